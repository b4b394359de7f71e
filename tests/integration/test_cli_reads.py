"""``flowbus events``, ``runs`` and ``entities`` on a real SQLite file, without a server: in-process
with click's runner, and once as a user runs them, in a process of their own."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowbus.cli import main
from flowbus.engine import Engine
from flowbus.publishing import active_config
from flowbus.stores.sqlite import SqliteBackend

COMPASS = Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml"

PAYMENTS = textwrap.dedent("""
    project: {name: shop}
    sources: [{name: web, event_type_from: "$.kind"}]
    events: [{name: Paid, properties: {Id: {type: String, required: true}}}]
    flows:
      - name: Intake
        source: web
        event_type: payment
        steps: [{id: p, action: publish, event: Paid, properties: {Id: "$.id"}}]
""")


def work_until_idle(db: Path, project: str) -> None:
    """What a worker does until the queue is empty: run every queued message once."""

    async def drain() -> None:
        backend = SqliteBackend(db, project)
        number, loaded = await active_config(backend)
        await Engine(loaded, backend=backend, config_version=number).drain()
        await backend.close()

    asyncio.run(drain())


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWBUS_DB", f"sqlite:///{tmp_path / 'flowbus.db'}")

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def send_company(cli, payload: dict) -> None:
    cli("send", "--source", "compass_inbound", "--data", json.dumps({"event": "upsert_company", "payload": payload}))


@pytest.fixture
def compass(cli, tmp_path):
    """Compass published; four companies sent (one twice, one without its key), and worked off."""
    cli("publish", str(COMPASS))
    for domain, industry, employees in (
        ("globex.example", "Energy", 40), ("acme.example", "Manufacturing", 1200), ("initech.example", "Software", 40),
    ):  # fmt: skip
        send_company(cli, {"domain": domain, "name": domain.split(".")[0].title(), "industry": industry,
                           "employees": employees})  # fmt: skip
    send_company(cli, {"domain": "acme.example", "employees": 1300})
    send_company(cli, {"name": "no domain"})
    work_until_idle(tmp_path / "flowbus.db", "compass")
    return cli


def test_entities_lists_what_upserts_wrote_in_key_order_as_a_table(compass):
    out = compass("entities", "company")
    assert out.stdout.splitlines() == [
        "KEY              VERSION  DATA",
        'acme.example     2        {"domain":"acme.example","name":"Acme","industry":"Manufacturing","employees":1300}',
        'globex.example   1        {"domain":"globex.example","name":"Globex","industry":"Energy","employees":40}',
        'initech.example  1        {"domain":"initech.example","name":"Initech","industry":"Software","employees":40}',
    ]
    assert out.stderr == ""  # one page: no hint
    assert compass("entities", "person").stdout == "no person records\n"


def test_entities_filters_by_field_and_pages_with_the_hint_on_stderr(compass):
    first = compass("entities", "company", "--where", "employees=40", "--limit", "1", "--json")
    page = json.loads(first.stdout)
    assert [r["key"] for r in page["items"]] == ["globex.example"] and page["next_cursor"] == "globex.example"
    assert first.stderr == "more on the next page: add --cursor globex.example\n"
    second = compass("entities", "company", "--where", "employees=40", "--limit", "1", "--cursor", "globex.example")
    assert second.stdout.splitlines()[1].startswith("initech.example  1") and second.stderr == ""
    both = compass("entities", "company", "--where", "employees=40", "--where", "industry=Software", "--json")
    assert [r["key"] for r in json.loads(both.stdout)["items"]] == ["initech.example"]
    bad = compass("entities", "company", "--where", "employees", code=2)
    assert "Invalid value for --where: 'employees' is not FIELD=VALUE" in bad.stderr


def test_entities_with_a_key_shows_one_record_and_a_missing_one_is_a_usage_error(compass):
    shown = compass("entities", "company", "acme.example")
    assert shown.stdout.splitlines()[0] == "company acme.example (version 2)"
    assert json.loads(shown.stdout.split("\n", 1)[1])["employees"] == 1300
    as_json = json.loads(compass("entities", "company", "acme.example", "--json").stdout)
    assert as_json == {
        "key": "acme.example",
        "version": 2,
        "data": {"domain": "acme.example", "name": "Acme", "industry": "Manufacturing", "employees": 1300},
    }
    missing = compass("entities", "company", "nope.example", code=2)
    assert "no company record 'nope.example' in project compass" in missing.stderr
    mixed = compass("entities", "company", "acme.example", "--where", "employees=1", code=2)
    assert "KEY shows one record; --where lists records" in mixed.stderr
    assert "'com-pany' is no entity name" in compass("entities", "com-pany", code=2).stderr


def test_runs_lists_runs_newest_first_filtered_by_status_trigger_and_flow(compass):
    table = compass("runs").stdout.splitlines()
    assert table[0].split() == ["ID", "STARTED", "FLOW", "HANDLER", "TRIGGER", "STATUS", "MS", "ERROR"]
    assert [line.split()[5] for line in table[1:]] == ["failed", *["succeeded"] * 4]  # newest first
    failed = compass("runs", "--status", "failed").stdout.splitlines()
    assert len(failed) == 2 and "needs its key field 'domain'" in failed[1]
    page = json.loads(compass("runs", "--flow", "compass_company_upsert", "--trigger", "message", "--json").stdout)
    assert len(page["items"]) == 5 and page["next_cursor"] is None
    assert page["items"][0]["status"] == "failed" and "steps" not in page["items"][0]
    assert compass("runs", "--trigger", "handler").stdout == "no runs\n"
    assert "'sleeping' is not one of" in compass("runs", "--status", "sleeping", code=2).stderr


def test_events_lists_published_events_newest_first_filtered_and_paged(cli, tmp_path):
    config = tmp_path / "payments.yaml"
    config.write_text(PAYMENTS)
    cli("publish", str(config))
    for n in range(3):
        cli("send", "--source", "web", "--data", json.dumps({"kind": "payment", "id": f"p{n}"}))
    work_until_idle(tmp_path / "flowbus.db", "shop")

    page = json.loads(cli("events", "--json").stdout)
    assert [e["data"]["Id"] for e in page["items"]] == ["p2", "p1", "p0"]
    first = cli("events", "--type", "Paid", "--limit", "2")
    assert [line.split()[2] for line in first.stdout.splitlines()] == ["TYPE", "Paid", "Paid"]
    cursor = page["items"][1]["id"]
    assert first.stderr == f"more on the next page: add --cursor {cursor}\n"
    rest = json.loads(cli("events", "--limit", "2", "--cursor", cursor, "--json").stdout)
    assert [e["data"]["Id"] for e in rest["items"]] == ["p0"] and rest["next_cursor"] is None
    chain = page["items"][0]["correlation_id"]
    assert [e["id"] for e in json.loads(cli("events", "--correlation-id", chain, "--json").stdout)["items"]] == [
        page["items"][0]["id"]
    ]
    assert cli("events", "--source", "elsewhere").stdout == "no events\n"
    assert cli("events", "--since", "2999-01-01T00:00:00", "--json").stdout.count('"id"') == 0
    refused = cli("events", "--since", "yesterday", code=2).stderr
    assert refused.endswith(
        "Error: Invalid value for --since: not a valid time: 'yesterday'; write it as ISO 8601, such as"
        " 2026-11-22T10:00:00Z\n"
    )


def test_a_user_reads_entities_in_a_process_of_their_own_data_on_stdout_and_the_hint_on_stderr(compass, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "flowbus", "entities", "company", "--limit", "2", "--json",
         "--db", f"sqlite:///{tmp_path / 'flowbus.db'}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    assert [r["key"] for r in page["items"]] == ["acme.example", "globex.example"]
    assert done.stderr == "more on the next page: add --cursor globex.example\n"
