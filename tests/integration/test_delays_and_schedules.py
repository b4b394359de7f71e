"""Delays and schedules from every way in: the HTTP ingress (headers and CloudEvents attributes),
the CLI, the Engine and the publish step; the ``scheduled`` state in traces, the API and /metrics;
``flowbus schedules`` on a file and on a database."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import textwrap
import zoneinfo

import pytest
from click.testing import CliRunner

from flowbus.cli import main
from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.keys import Scope
from flowbus.publishing import active_config, publish_config
from flowbus.schedules import fire_due
from flowbus.stores.sqlite import SqliteBackend
from flowbus.trace import to_data, trace_message

CONFIG = textwrap.dedent("""
    project: {name: shop}
    sources: [{name: web, event_type_from: "$.kind"}]
    events:
      - name: Reminder
        properties: {Id: {type: String, required: true}}
    flows:
      - name: Intake
        source: web
        event_type: order
        steps:
          - {id: later, action: publish, event: Reminder, properties: {Id: "$.id"}, delay: "$.wait"}
      - name: Remind
        inputs: {Id: {type: String, required: true}}
        steps: [{id: out, action: output, values: {id: "=inputs.Id"}}]
    handlers: [{name: remind, event: Reminder, flow: Remind, bindings: {Id: Id}}]
    schedules:
      - {name: daily, cron: "0 7 * * *", timezone: Europe/Paris, publish: {event: Reminder, properties: {Id: daily}}}
""")
SOURCE = "/v1/projects/shop/sources/web/events"
EVENTS = "/v1/projects/shop/events"
HOUR = dt.timedelta(hours=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def engine_of(store) -> Engine:
    number, loaded = await active_config(store)
    return Engine(loaded, backend=store, config_version=number)


@pytest.fixture
async def api(serve_api):
    async with serve_api("shop", CONFIG, scopes=(Scope.INGEST, Scope.READ)) as served:
        yield served


async def test_the_http_ingress_delays_by_header_and_by_cloudevents_attribute(api):
    client, auth, store = api
    before = now()
    by_delay = await client.post(
        SOURCE, json={"kind": "order", "id": "a", "wait": 0}, headers={**auth, "X-Delay": "1h"}
    )
    at = (before + 2 * HOUR).isoformat()
    by_time = await client.post(
        SOURCE, json={"kind": "order", "id": "b", "wait": 0}, headers={**auth, "X-Not-Before": at}
    )
    cloudevent = {"specversion": "1.0", "id": "r1", "source": "crm", "type": "Reminder", "data": {"Id": "c"},
                  "notbefore": (before + 3 * HOUR).isoformat()}  # fmt: skip
    by_attribute = await client.post(
        EVENTS, json=cloudevent, headers={**auth, "content-type": "application/cloudevents+json"}
    )
    assert [r.status_code for r in (by_delay, by_time, by_attribute)] == [202, 202, 202]
    ids = [
        by_delay.json()["message_id"],
        by_time.json()["message_id"],
        by_attribute.json()["accepted"][0]["message_id"],
    ]
    waits = [(await store.get_message(i)).available_at - before for i in ids]
    assert [round(w / HOUR, 2) for w in waits] == [1.0, 2.0, 3.0]
    assert await (await engine_of(store)).drain() == []  # none is due
    assert (await store.queue_depth()).get(("inbound", "scheduled")) == 3

    message = (await client.get(f"/v1/projects/shop/messages/{ids[0]}", headers=auth)).json()
    assert message["state"] == "scheduled"
    [node] = message["runs"]
    assert node["kind"] == "scheduled" and node["note"].startswith("delayed: invisible to workers until ")
    text = (await client.get("/metrics")).text
    assert 'flowbus_queue_depth{project="shop",queue="inbound",state="scheduled"} 3.0' in text
    assert 'state="ready"' not in text


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X-Delay": "soon"}, "header X-Delay: 'soon' is not a delay; give seconds or a number with a unit"),
        ({"X-Delay": "400d"}, "header X-Delay: '400d' is more than the longest delay, 365 days"),
        ({"X-Not-Before": "2026-12-01T07:00:00"}, "header X-Not-Before: 2026-12-01T07:00:00 has no offset"),
        ({"X-Delay": "5", "X-Not-Before": "2026-12-01T07:00:00Z"}, "give a delay or a not-before time, not both"),
    ],
)
async def test_a_delay_flowbus_cannot_honour_is_refused_with_422(api, headers, error):
    client, auth, _store = api
    answer = await client.post(SOURCE, json={"kind": "order", "id": "a", "wait": 0}, headers={**auth, **headers})
    assert answer.status_code == 422 and error in answer.json()["error"], answer.text


async def test_a_cloudevent_with_a_bad_delay_attribute_is_refused_naming_it(api):
    client, auth, _store = api
    cloudevent = {"specversion": "1.0", "id": "r1", "source": "crm", "type": "Reminder", "data": {"Id": "c"},
                  "delay": "-3"}  # fmt: skip
    answer = await client.post(
        EVENTS, json=cloudevent, headers={**auth, "content-type": "application/cloudevents+json"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "event: delay: a delay cannot be negative, got '-3'"


async def test_a_publish_step_with_a_delay_queues_its_event_and_it_runs_once_due(tmp_path):
    store = SqliteBackend(tmp_path / "flowbus.db", "shop")
    await publish_config(store, CONFIG, file="flowbus.yaml")
    engine = await engine_of(store)
    await engine.send("web", "order", {"kind": "order", "id": "soon", "wait": 0.3})
    await engine.send("web", "order", {"kind": "order", "id": "late", "wait": "2h"})
    [intake, _] = await engine.drain()
    assert intake.status == "succeeded"
    queued = intake.steps[0].output
    assert queued["queued"] is True and queued["not_before"] > intake.started_at
    assert await engine.drain() == []  # the reminders are not due yet
    await asyncio.sleep(0.35)
    [remind] = [r for r in await engine.drain() if r.flow == "Remind"]
    assert remind.outputs == {"id": "soon"}
    assert remind.started_at >= queued["not_before"]
    assert (await store.queue_depth()).get(("inbound", "scheduled")) == 1  # the 2 h one still waits
    await store.close()


async def test_engine_publish_and_send_take_a_delay_or_a_not_before_time(tmp_path):
    engine = Engine(load_config_text(CONFIG, file="flowbus.yaml"))
    message_id = await engine.publish("Reminder", {"Id": "x"}, delay=dt.timedelta(minutes=5))
    assert isinstance(message_id, str)
    sent = await engine.send("web", "order", {"kind": "order", "id": "y", "wait": 0}, not_before=now() + HOUR)
    queued = [await engine.backend.get_message(i) for i in (message_id, sent)]
    assert [m.to_dict()["state"] for m in queued] == ["scheduled", "scheduled"]
    assert [to_data(n)["kind"] for n in await trace_message(engine.backend, sent)] == ["scheduled"]
    instance = await engine.publish("Reminder", {"Id": "now"})  # no delay: published at once, as before
    assert instance.type == "Reminder"


def test_the_cli_sends_a_delayed_message_and_lists_the_schedules(tmp_path):
    db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    config = tmp_path / "flowbus.yaml"
    config.write_text(CONFIG)
    runner = CliRunner()
    assert runner.invoke(main, ["publish", str(config), "--db", db]).exit_code == 0
    sent = runner.invoke(
        main, ["send", "--source", "web", "--data", '{"kind": "order", "id": "z", "wait": 0}', "--delay", "10m",
               "--db", db, "--json"],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    answer = json.loads(sent.output)
    assert answer["not_before"] is not None
    bad = runner.invoke(main, ["send", "--event", "Reminder", "--data", '{"Id": "q"}', "--delay", "x", "--db", db])
    assert bad.exit_code == 2 and "--delay: 'x' is not a delay" in bad.output

    listed = runner.invoke(main, ["schedules", str(config), "--count", "2", "--json"])
    assert listed.exit_code == 0, listed.output
    [daily] = json.loads(listed.output)
    assert (daily["name"], daily["does"], daily["last_tick"]) == ("daily", "publish Reminder", None)
    first, second = (dt.datetime.fromisoformat(t) for t in daily["next"])
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    assert [t.astimezone(paris).strftime("%H:%M") for t in (first, second)] == ["07:00", "07:00"]
    assert first.utcoffset() == paris.utcoffset(first.replace(tzinfo=None)) and first > now()

    async def fire() -> None:
        store = SqliteBackend(tmp_path / "flowbus.db", "shop")
        engine = await engine_of(store)
        seven = first - dt.timedelta(days=1)
        await fire_due(store, engine.plan, engine.config_version, now=seven + dt.timedelta(seconds=5))
        await store.close()

    asyncio.run(fire())
    from_db = runner.invoke(main, ["schedules", "--db", db])
    assert from_db.exit_code == 0, from_db.output
    lines = from_db.output.splitlines()
    assert lines[0] == "daily  0 7 * * *  Europe/Paris  catch_up latest  publish Reminder"
    assert lines[1].startswith("  last  ") and len([line for line in lines if line.startswith("  next  ")]) == 3


async def test_a_delayed_publish_stays_in_the_trace_its_run_came_in(tmp_path):
    """A delayed publish queues its event in the trace its run came in, as an immediate one
    queues its handlers."""
    from flowbus.queue import source_message

    backend = SqliteBackend(tmp_path / "flowbus.db", "shop")
    engine = Engine(load_config_text(CONFIG), backend=backend, config_version=1)
    context = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    message = source_message(
        "web", "order", {"kind": "order", "id": "a", "wait": "1h"}, None, None, 1, trace_context=context
    )
    await backend.send([message])
    await engine.drain()
    await backend.close()
    with sqlite3.connect(tmp_path / "flowbus.db") as conn:
        queued = conn.execute("SELECT kind, state, trace_context FROM messages WHERE kind <> 'source'").fetchall()
    assert queued == [("event", "scheduled", context)]
