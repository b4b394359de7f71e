"""Event versions in each store: an instance keeps its version, and a queued event is published by
a worker as the version it was checked against."""

from __future__ import annotations

from flowbus.config import load_config_text
from flowbus.engine import Engine

#: Ping v1 and v2 side by side, each with one handler saving what it got
VERSIONED = """
events: [{name: Ping, properties: {n: {type: Integer}}}, {name: Ping, version: 2, properties: {n: {type: Integer}, tag: {type: String}}}]
flows:
  - {name: on_v1, inputs: {n: {type: Integer}}, steps: [{id: s, action: save, entity: V1, data: {id: "=string(inputs.n)"}}]}
  - {name: on_v2, inputs: {n: {type: Integer}}, steps: [{id: s, action: save, entity: V2, data: {id: "=string(inputs.n)"}}]}
handlers: [{name: h1, event: Ping, event_version: 1, flow: on_v1, bindings: {n: n}}, {name: h2, event: Ping, flow: on_v2, bindings: {n: n}}]
"""


async def test_an_event_instance_keeps_its_version_in_every_store(backend):
    engine = Engine(load_config_text(VERSIONED), backend=backend)
    old = await engine.publish("Ping", {"n": 1}, version=1)
    new = await engine.publish("Ping", {"n": 2, "tag": "x"})
    assert [(await backend.get_event(i.id)).version for i in (old, new)] == [1, 2]


async def test_a_worker_publishes_a_queued_event_as_its_version_and_runs_that_versions_handlers(backend):
    engine = Engine(load_config_text(VERSIONED), backend=backend)
    await engine.send_event("Ping", {"n": 1}, source="tests", version=1)
    await engine.send_event("Ping", {"n": 2, "tag": "x"}, source="tests")
    runs = await engine.drain()
    assert sorted((r.handler, r.status.value) for r in runs if r.handler) == [("h1", "succeeded"), ("h2", "succeeded")]
    assert sorted(e.version for e in await backend.list_events()) == [1, 2]
    assert (list(await backend.entities("V1")), list(await backend.entities("V2"))) == (["1"], ["2"])
