"""Two versions of one event side by side: publishers name a version (default: the latest), and an
instance reaches only the handlers subscribed to its version."""

from __future__ import annotations

import pytest

from flowbus.errors import EventValidationError, UnknownNameError
from flowbus.runtime.routing import match_event
from flowbus.testing import entities
from flowbus.trace import render, trace_event

VERSIONED = """
events:
  - {name: OrderPlaced, properties: {OrderId: {type: String, required: true}}}
  - {name: OrderPlaced, version: 2, properties: {OrderId: {type: String, required: true}, Channel: {type: String, required: true}}}
flows:
  - name: record_v1
    inputs: {OrderId: {type: String, required: true}}
    steps: [{id: save, action: save, entity: SeenV1, data: {id: "=inputs.OrderId"}}]
  - name: record_v2
    inputs: {OrderId: {type: String, required: true}, Channel: {type: String, required: true}}
    steps: [{id: save, action: save, entity: SeenV2, data: {id: "=inputs.OrderId", channel: "=inputs.Channel"}}]
  - name: republish
    inputs: {OrderId: {type: String, required: true}}
    steps:
      - {id: old, action: publish, event: OrderPlaced, event_version: 1, properties: {OrderId: "=inputs.OrderId"}}
      - {id: new, action: publish, event: OrderPlaced, properties: {OrderId: "=inputs.OrderId", Channel: api}}
      - {id: done, action: output, values: {old: "=steps.old.event_id", new: "=steps.new.event_id"}}
handlers:
  - {name: OnV1, event: OrderPlaced, event_version: 1, flow: record_v1, mode: sync, bindings: {OrderId: OrderId}}
  - name: OnLatest
    event: OrderPlaced
    flow: record_v2
    mode: sync
    bindings: {OrderId: OrderId, Channel: Channel}
"""


async def test_publishing_without_a_version_publishes_the_latest_to_its_handlers_only(engine_for):
    engine = engine_for(VERSIONED)
    instance = await engine.publish("OrderPlaced", {"OrderId": "o1", "Channel": "web"})
    assert (instance.type, instance.version) == ("OrderPlaced", 2)
    assert entities(engine, "SeenV2") == {"o1": {"id": "o1", "channel": "web"}}
    assert entities(engine, "SeenV1") == {}


async def test_publishing_an_older_version_runs_the_handlers_still_subscribed_to_it(engine_for):
    engine = engine_for(VERSIONED)
    instance = await engine.publish("OrderPlaced", {"OrderId": "o1"}, version=1)
    assert instance.version == 1
    assert await engine.backend.get_event(instance.id) == instance
    assert entities(engine, "SeenV1") == {"o1": {"id": "o1"}}
    assert entities(engine, "SeenV2") == {}


async def test_properties_are_checked_against_the_version_published(engine_for):
    engine = engine_for(VERSIONED)
    with pytest.raises(EventValidationError, match="OrderPlaced v2: Channel: required, but missing"):
        await engine.publish("OrderPlaced", {"OrderId": "o1"})
    with pytest.raises(EventValidationError, match="OrderPlaced v1: Channel: not a declared property"):
        await engine.publish("OrderPlaced", {"OrderId": "o1", "Channel": "web"}, version=1)


async def test_publishing_a_version_the_event_does_not_have_names_the_defined_ones(engine_for):
    engine = engine_for(VERSIONED)
    with pytest.raises(UnknownNameError, match="event 'OrderPlaced' has no version 3; defined: 1, 2"):
        await engine.publish("OrderPlaced", {"OrderId": "o1"}, version=3)


async def test_a_publish_step_publishes_the_version_it_names_or_the_latest(engine_for):
    engine = engine_for(VERSIONED)
    run = await engine.run_flow("republish", {"OrderId": "o7"})
    assert run.succeeded, run.error
    old = await engine.backend.get_event(run.outputs["old"])
    new = await engine.backend.get_event(run.outputs["new"])
    assert (old.version, new.version) == (1, 2)
    assert entities(engine, "SeenV1") == {"o7": {"id": "o7"}}
    assert entities(engine, "SeenV2") == {"o7": {"id": "o7", "channel": "api"}}


async def test_a_queued_event_is_published_as_the_version_it_was_checked_against(engine_for):
    engine = engine_for(VERSIONED.replace("mode: sync", "mode: async"))
    await engine.send_event("OrderPlaced", {"OrderId": "o1"}, source="tests", version=1)
    await engine.send_event("OrderPlaced", {"OrderId": "o2", "Channel": "web"}, source="tests")
    await engine.drain()
    assert sorted((e.data["OrderId"], e.version) for e in engine.backend.all_events()) == [("o1", 1), ("o2", 2)]
    assert list(entities(engine, "SeenV1")) == ["o1"] and list(entities(engine, "SeenV2")) == ["o2"]


async def test_the_trace_names_the_version_of_the_event(engine_for):
    engine = engine_for(VERSIONED)
    instance = await engine.publish("OrderPlaced", {"OrderId": "o1", "Channel": "web"})
    text = render(await trace_event(engine.backend, instance))
    assert text.splitlines()[0].startswith("event OrderPlaced v2 ")
    assert "handler OnLatest" in text and "OnV1" not in text


def test_matching_an_event_names_the_handlers_of_its_latest_version(engine_for):
    engine = engine_for(VERSIONED)
    found = match_event(engine.plan, "OrderPlaced")
    assert (found.sync, found.async_) == (("OnLatest",), ())
    assert [h.name for h in engine.plan.versions[("OrderPlaced", 1)].subscribers.sync] == ["OnV1"]
