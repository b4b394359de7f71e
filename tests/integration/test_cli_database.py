"""The database commands of the CLI, in-process, on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowbus.cli import main
from flowbus.publishing import active_config
from flowbus.runtime.engine import Engine
from flowbus.stores.sqlite import SqliteBackend

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPASS = EXAMPLES / "compass" / "flowbus.yaml"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWBUS_DB", f"sqlite:///{tmp_path / 'flowbus.db'}")

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def work_once(tmp_path: Path) -> None:
    """What a worker that gives up at once does with the compass project's queued messages."""

    async def drain() -> None:
        backend = SqliteBackend(tmp_path / "flowbus.db", "compass")
        number, loaded = await active_config(backend)
        await Engine(loaded, backend=backend, config_version=number).drain()
        await backend.close()

    asyncio.run(drain())


def test_publish_versions_diff_and_rollback(cli, tmp_path):
    assert cli("publish", str(COMPASS)).startswith("published version 1 of compass: sources: 1 added; flows: 1 added")
    assert cli("publish", str(COMPASS)) == "unchanged: version 1 of compass is already this config\n"
    changed = tmp_path / "flowbus.yaml"
    changed.write_text(COMPASS.read_text().replace("upsert_company\n", "upsert_company\n    enabled: false\n", 1))
    out = cli("publish", str(changed))
    assert out.splitlines() == [
        "published version 2 of compass: flows: 1 changed",
        "  ~ flow compass_company_upsert: enabled",
    ]
    listed = cli("versions").splitlines()
    assert listed[0].startswith("  v1") and listed[1].startswith("* v2")
    assert cli("diff").splitlines() == ["v1 -> v2: flows: 1 changed", "  ~ flow compass_company_upsert: enabled"]
    data = json.loads(cli("diff", "--from", "1", "--to", "2", "--json"))
    assert data["from"] == 1 and data["changes"][0]["fields"] == ["enabled"]
    assert cli("rollback", "1").startswith("published version 3 (the config of v1): flows: 1 changed")
    assert cli("versions").splitlines()[-1].startswith("* v3")


def test_an_invalid_config_is_not_published(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("flows: [{name: f}]\n")
    assert f"{bad}:1: flows[0].steps: required field is missing" in cli("publish", str(bad), code=1)


def test_commands_on_an_empty_project_say_what_to_do(cli):
    assert "has no published config: flowbus publish FILE" in cli("send", "--source", "s", "--data", "{}", code=2)
    assert cli("versions") == "project default has no config version yet: flowbus publish FILE\n"


def test_send_trace_and_the_dead_letter_queue(cli, tmp_path):
    cli("publish", str(COMPASS))
    sent = cli(
        "send", "--source", "compass_inbound", "--data", '{"event": "upsert_company", "payload": {"name": "no domain"}}'
    )
    message_id = sent.split()[-1]
    assert sent.startswith("message ")
    assert cli("send", "--source", "compass_inbound", "--data", "{}", code=2).count("no --type given") == 1
    assert "no dead letters" in cli("dlq", "list")

    work_once(tmp_path)
    listed = cli("dlq", "list")
    assert message_id in listed and "needs its key field 'domain'" in listed
    shown = json.loads(cli("dlq", "show", message_id))
    assert shown["state"] == "dead" and shown["errors"][0]["attempt"] == 1
    trace = cli("trace", message_id)
    assert "run compass_company_upsert [failed]" in trace
    assert cli("dlq", "redrive", "--all", "--current-version") == "redrove 1 message\n"
    assert cli("dlq", "redrive", "nope", code=1) == "redrove 0 messages\n"
    assert "no event, message or run 'nothing'" in cli("trace", "nothing", code=2)


def test_the_trace_of_a_message_no_flow_takes_says_so_and_names_the_nearest_pairs(cli, tmp_path):
    cli("publish", str(COMPASS))
    sent = cli("send", "--source", "compass_inbound", "--type", "upsert_compnay", "--data", "{}")
    message_id = sent.split()[-1]
    work_once(tmp_path)
    assert cli("trace", message_id) == (
        f"message {message_id} [unmatched]: matched no flow: no enabled trigger flow for "
        "(compass_inbound, upsert_compnay); nearest configured pairs: (compass_inbound, upsert_company)\n"
    )
    [note] = json.loads(cli("trace", message_id, "--json"))
    assert (note["kind"], note["nearest"]) == ("unmatched", [["compass_inbound", "upsert_company"]])
    # a version that routes the pair now is named, instead of pairs near it
    changed = tmp_path / "flowbus.yaml"
    changed.write_text(COMPASS.read_text().replace("event_type: upsert_company", "event_type: upsert_compnay"))
    cli("publish", str(changed))
    assert cli("trace", message_id).endswith(
        "matched no flow when it was processed; version 2 now routes (compass_inbound, upsert_compnay) "
        "to compass_company_upsert\n"
    )
