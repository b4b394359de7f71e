"""The database commands of the CLI, in-process, on a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowbus.cli import main
from flowbus.engine import Engine
from flowbus.publishing import active_config
from flowbus.stores.sqlite import SqliteBackend

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPASS = EXAMPLES / "compass" / "flowbus.yaml"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWBUS_DB", f"sqlite:///{tmp_path / 'flowbus.db'}")

    def invoke(*args: str, code: int = 0, part: str = "output") -> str:
        """What the command printed: ``part`` is "output" (stdout and stderr), "stdout", "stderr", or
        "result" for click's whole result."""
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result if part == "result" else getattr(result, part)

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
    assert cli("publish", str(COMPASS), part="stderr").startswith(
        "published version 1 of compass: sources: 1 added; flows: 1 added"
    )
    assert cli("publish", str(COMPASS), part="stderr") == "unchanged: version 1 of compass is already this config\n"
    assert cli("publish", str(COMPASS), part="stdout") == "1\n"
    changed = tmp_path / "flowbus.yaml"
    changed.write_text(COMPASS.read_text().replace("upsert_company\n", "upsert_company\n    enabled: false\n", 1))
    out = cli("publish", str(changed), part="stderr")
    assert out.splitlines() == [
        "published version 2 of compass: flows: 1 changed",
        "  ~ flow compass_company_upsert: enabled",
    ]
    listed = cli("versions").splitlines()
    assert listed[0].startswith("  v1") and listed[1].startswith("* v2")
    assert cli("diff").splitlines() == ["v1 -> v2: flows: 1 changed", "  ~ flow compass_company_upsert: enabled"]
    data = json.loads(cli("diff", "--from", "1", "--to", "2", "--json"))
    assert data["from"] == 1 and data["changes"][0]["fields"] == ["enabled"]
    assert cli("rollback", "1", part="stderr").startswith("published version 3 (the config of v1): flows: 1 changed")
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
        "send",
        "--source",
        "compass_inbound",
        "--data",
        '{"event": "upsert_company", "payload": {"name": "no domain"}}',
        part="stdout",
    )
    message_id = sent.strip()
    assert sent == f"{message_id}\n" and len(message_id) == 36
    no_type = cli("send", "--source", "compass_inbound", "--data", "[1]", code=2, part="stderr")
    expected = "no event type for source 'compass_inbound': the source's event_type_from $.event found nothing"
    assert no_type.count(f"{expected}; give --type") == 1
    assert "no dead letters" in cli("dlq", "list")

    work_once(tmp_path)
    listed = cli("dlq", "list")
    assert message_id in listed and "needs its key field 'domain'" in listed
    shown = json.loads(cli("dlq", "show", message_id))
    assert shown["state"] == "dead" and shown["errors"][0]["attempt"] == 1
    trace = cli("trace", message_id)
    assert "run compass_company_upsert [failed]" in trace
    redriven = cli("dlq", "redrive", "--all", "--current-version", part="result")
    assert redriven.stderr == "redrove 1 message\n"
    assert redriven.stdout == f"{message_id}\n"  # the ids put back, bare, one a line
    not_dead = cli("dlq", "redrive", "nope", message_id, code=5, part="stderr")
    assert not_dead == f"redrove 0 messages\nnot dead letters: nope, {message_id}\n"
    work_once(tmp_path)  # dead again
    mixed = cli("dlq", "redrive", message_id, "nope", code=5, part="result")
    assert mixed.stdout == f"{message_id}\n"
    assert mixed.stderr == "redrove 1 message\nnot dead letters: nope\n"
    assert "no event, message or run 'nothing'" in cli("trace", "nothing", code=2)


PINGS = """
project: {name: pings}
sources:
  - {name: pinger, event_type_from: "$.meta.kind"}
  - {name: bracketed, event_type_from: "$['meta']['kind']"}
events: [{name: Ping, properties: {n: {type: Integer}}}]
flows:
  - {name: OnPing, source: pinger, event_type: ping, steps: [{id: o, action: output, values: {n: 1}}]}
  - {name: Echo, inputs: {n: {type: Integer}}, steps: [{id: o, action: output, values: {n: "=inputs.n"}}]}
handlers: [{name: echo, event: Ping, flow: Echo, mode: sync, bindings: {n: n}}]
"""


@pytest.fixture
def pings(cli, tmp_path) -> Path:
    path = tmp_path / "pings.yaml"
    path.write_text(PINGS)
    cli("publish", str(path))
    return path


def stored(tmp_path: Path, read):
    """``read(backend)`` on the test's database."""
    import asyncio

    from flowbus.stores.sqlite import SqliteBackend

    async def work():
        backend = SqliteBackend(tmp_path / "flowbus.db", "pings")
        try:
            return await read(backend)
        finally:
            await backend.close()

    return asyncio.run(work())


def test_send_prints_the_message_id_alone_on_stdout_and_what_it_did_on_stderr(cli, pings, tmp_path):
    result = cli("send", "--source", "pinger", "--data", '{"meta": {"kind": "ping"}}', part="result")
    message_id = result.stdout.strip()
    assert result.stdout == f"{message_id}\n"
    assert result.stderr == f"sent message {message_id} (ping) to project pings\n"
    message = stored(tmp_path, lambda b: b.get_message(message_id))
    assert message.body == {"source": "pinger", "type": "ping", "data": {"meta": {"kind": "ping"}}}
    assert message.config_version == 1


def test_send_finds_the_type_by_any_jsonpath_the_source_declares(cli, pings, tmp_path):
    for source in ("pinger", "bracketed"):
        message_id = cli("send", "--source", source, "--data", '{"meta": {"kind": "pong"}}', part="stdout").strip()
        assert stored(tmp_path, lambda b, i=message_id: b.get_message(i)).body["type"] == "pong"
    assert "event_type_from $['meta']['kind'] found nothing; give --type" in cli(
        "send", "--source", "bracketed", "--data", '{"meta": {}}', code=2
    )


def test_send_refuses_a_source_the_active_config_does_not_have(cli, pings):
    out = cli("send", "--source", "pinged", "--type", "ping", "--data", "{}", code=2)
    assert "source 'pinged' is not in config version 1 of project pings (its sources: pinger, bracketed)" in out


def test_send_uses_a_manifest_stored_before_manifests_kept_their_sources(cli, tmp_path):
    from flowbus.config import load_config_text
    from flowbus.config.versions import ConfigVersion
    from flowbus.publishing import manifest_of

    loaded = load_config_text(PINGS, file="pings.yaml")
    old = manifest_of(loaded)._replace(sources=None)
    draft = ConfigVersion(number=0, text=PINGS, file="pings.yaml", content_hash="h", created_at=NOW)
    stored(tmp_path, lambda b: b.add_version(draft, old))
    message_id = cli("send", "--source", "pinger", "--data", '{"meta": {"kind": "ping"}}', part="stdout").strip()
    assert stored(tmp_path, lambda b: b.get_message(message_id)).body["type"] == "ping"


def test_send_event_prints_the_event_id_and_json_gives_the_whole_answer(cli, pings, tmp_path):
    event_id = cli("send", "--event", "Ping", "--data", '{"n": 3}', part="stdout").strip()
    assert stored(tmp_path, lambda b: b.get_event(event_id)).type == "Ping"
    answer = json.loads(cli("send", "--event", "Ping", "--data", '{"n": 4}', "--json", part="stdout"))
    assert answer["kind"] == "event" and answer["type"] == "Ping" and answer["data"] == {"n": 4}
    sent = json.loads(cli("send", "--source", "pinger", "--data", '{"meta": {"kind": "x"}}', "--json", part="stdout"))
    assert sent["kind"] == "message" and sent["type"] == "x" and sent["config_version"] == 1


def test_publish_and_rollback_print_the_version_number_alone_on_stdout(cli, pings, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(PINGS.replace("values: {n: 1}", "values: {n: 2}"))
    published = cli("publish", str(changed), part="result")
    assert published.stdout == "2\n" and published.stderr.startswith("published version 2 of pings")
    assert cli("rollback", "1", part="stdout") == "3\n"
    answer = json.loads(cli("rollback", "2", "--json", part="stdout"))
    assert answer["version"] == 4 and answer["unchanged"] is False and answer["changes"][0]["name"] == "OnPing"


def test_keys_create_prints_the_token_alone_on_stdout(cli, pings):
    from flowbus.keys import parse_token

    created = cli("keys", "create", "--name", "ci", "--scope", "ingest", part="result")
    key_id, _secret = parse_token(created.stdout.strip())
    assert created.stderr.startswith(f"created key {key_id} for project pings (ingest)")
    assert key_id in cli("keys", "list")
    answer = json.loads(cli("keys", "create", "--name", "ci2", "--scope", "read", "--json", part="stdout"))
    assert parse_token(answer["token"])[0] == answer["id"] and answer["scopes"] == ["read"]
    assert "secret_hash" not in answer


def test_trace_shows_a_chain_of_a_hundred_events_each_once_and_as_json(cli, tmp_path):
    import asyncio

    from flowbus.engine import Engine
    from flowbus.publishing import active_config
    from flowbus.runtime.bounds import RuntimeLimits
    from flowbus.stores.sqlite import SqliteBackend
    from tests.unit.cli.test_event_chains import CHAIN

    config = tmp_path / "chain.yaml"
    config.write_text(CHAIN.format(until=100))
    cli("publish", str(config))

    async def chains() -> dict[int, str]:
        """Chains of 25, 50 and 100 events (a handler publishing its own event), run by a worker."""
        backend = SqliteBackend(tmp_path / "flowbus.db", "default")
        number, loaded = await active_config(backend)
        engine = Engine(loaded, backend=backend, config_version=number, limits=RuntimeLimits(max_chain_depth=100))
        firsts = {
            100 - start + 1: (await engine.publish("Tick", {"n": start}, source="test")).id for start in (76, 51, 1)
        }
        await engine.drain()
        await backend.close()
        return firsts

    firsts = asyncio.run(chains())
    texts = {length: cli("trace", event_id).splitlines() for length, event_id in firsts.items()}
    lines = {length: len(text) for length, text in texts.items()}
    assert lines[100] - lines[50] == 2 * (lines[50] - lines[25])  # linear in the chain's length
    # a deep chain goes on at the left margin: no line is wider than at the chain's start plus the indent limit
    assert max(map(len, texts[100])) <= max(map(len, texts[100][:20])) + 60
    [tree] = json.loads(cli("trace", firsts[100], "--json"))
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        found += [node["data"]["n"]] if node["kind"] == "event" else []
        stack.extend(node["children"])
    assert sorted(found) == list(range(1, 101))


def test_the_trace_of_a_message_no_flow_takes_says_so_and_names_the_nearest_pairs(cli, tmp_path):
    cli("publish", str(COMPASS))
    message_id = cli(
        "send", "--source", "compass_inbound", "--type", "upsert_compnay", "--data", "{}", part="stdout"
    ).strip()
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


@pytest.mark.parametrize(
    "args",
    [
        ("runs",),
        ("runs", "--project", "compass"),
        ("versions",),
        ("dlq", "list"),
        ("keys", "list"),
        ("db", "migrate"),
        ("publish", str(COMPASS)),
        ("send", "--event", "Ping", "--data", "{}"),
    ],
)
def test_a_database_that_cannot_be_used_is_an_error_line_and_exit_code_5_not_a_traceback(tmp_path, monkeypatch, args):
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not a database\n" * 100)
    monkeypatch.setenv("FLOWBUS_DB", f"sqlite:///{not_a_database}")
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 5, result.output
    assert result.stderr == "error: SQLite: file is not a database\n"


def test_an_unreachable_postgres_is_an_error_line_and_exit_code_5():
    pytest.importorskip("psycopg")
    result = CliRunner().invoke(main, ["runs", "--db", "postgresql://nobody@127.0.0.1:1/x"])
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith("error: PostgreSQL: ")
    assert "Traceback" not in result.output


def test_publish_prints_the_warnings_of_a_flow_that_never_runs_on_stderr_and_still_publishes(cli, tmp_path):
    path = tmp_path / "lost.yaml"
    path.write_text("project: {name: lost}\nflows:\n  - {name: lost, steps: [{id: a, action: log, message: hi}]}\n")
    published = cli("publish", str(path), part="result")
    assert published.stdout == "1\n"
    assert f"{path}:3: flows[0].name: warning: flow 'lost' never runs" in published.stderr


def test_send_to_a_source_without_event_type_from_asks_for_type(cli, tmp_path):
    path = tmp_path / "untyped.yaml"
    path.write_text(PINGS.replace("{name: bracketed, event_type_from: \"$['meta']['kind']\"}", "{name: storefront}"))
    cli("publish", str(path))
    refused = cli("send", "--source", "storefront", "--data", "{}", code=2, part="stderr")
    assert "no event type for source 'storefront': the source has no event_type_from; give --type" in refused


def test_send_file_publishes_every_line_in_batches_and_prints_the_ids_as_they_commit(cli, pings, tmp_path):
    lines = tmp_path / "pings.jsonl"
    lines.write_text("".join(f'{{"n": {n}}}\n' for n in range(7)) + "\n")  # a blank line is skipped
    result = cli("send", "--event", "Ping", "--file", str(lines), "--batch-size", "3", part="result")
    ids = result.stdout.split()
    assert len(set(ids)) == 7
    assert result.stderr == f"sent 7 events from {lines} to project pings\n"
    events = [stored(tmp_path, lambda b, i=i: b.get_event(i)) for i in ids]
    assert [e.data["n"] for e in events] == list(range(7))
    answer = json.loads(cli("send", "--event", "Ping", "--file", str(lines), "--json", part="stdout"))
    assert answer["kind"] == "events" and answer["count"] == 7 and len(answer["ids"]) == 7


def test_send_file_queues_raw_messages_with_each_line_s_own_type(cli, pings, tmp_path):
    lines = tmp_path / "raw.jsonl"
    lines.write_text('{"meta": {"kind": "ping"}}\n{"meta": {"kind": "pong"}}\n')
    ids = cli("send", "--source", "pinger", "--file", str(lines), "--group", "g", part="stdout").split()
    bodies = [stored(tmp_path, lambda b, i=i: b.get_message(i)) for i in ids]
    assert [(m.body["type"], m.group_key) for m in bodies] == [("ping", "g"), ("pong", "g")]
    lines.write_text('{"meta": {"kind": "ping"}}\n{"meta": {}}\n')
    out = cli("send", "--source", "pinger", "--file", str(lines), "--batch-size", "1", code=2)
    assert f"{lines}:2: no event type for source 'pinger'; give --type; the 1 before it (to line 1) were sent" in out


def test_send_file_stops_at_a_bad_line_naming_it_and_what_was_sent(cli, pings, tmp_path):
    lines = tmp_path / "pings.jsonl"
    lines.write_text('{"n": 1}\n{"n": 2}\n{"n": 3}\n{"n": "three"}\n{"n": 5}\n')
    out = cli("send", "--event", "Ping", "--file", str(lines), "--batch-size", "2", code=2, part="result")
    assert len(out.stdout.split()) == 2  # the first batch committed; the second, holding line 4, did not
    assert f"{lines}:4: " in out.stderr and "the 2 before it (to line 2) were sent" in out.stderr
    assert stored(tmp_path, lambda b: b.count_events()) == 2
    lines.write_text('{"n": 1}\n{"n": \n')
    out = cli("send", "--event", "Ping", "--file", str(lines), code=2, part="stderr")
    assert f"{lines}:2: not JSON: " in out and "nothing was sent" in out
    assert "give exactly one of --data or --file" in cli("send", "--event", "Ping", code=2)
    assert "--dedup-id, --delay and --not-before go with --data, not with --file" in cli(
        "send", "--source", "pinger", "--file", str(lines), "--dedup-id", "d", code=2
    )
    assert f"cannot read {tmp_path / 'none.jsonl'}" in cli(
        "send", "--event", "Ping", "--file", str(tmp_path / "none.jsonl"), code=2
    )
