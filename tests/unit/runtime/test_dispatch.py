"""Dispatch semantics (design §4): trigger flows, publish, sync and async handlers, units of work."""

from __future__ import annotations

import pytest

from flowbus.errors import EventValidationError, Rejected, RunFailed, UnknownNameError
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.records import RunStatus, Trigger
from flowbus.testing import entities

TWO_FLOWS = """
flows:
  - name: first
    source: shop
    event_type: order
    steps: [{id: a, action: save, entity: Log, data: {id: first, seen: "$.n"}}]
  - name: paused
    source: shop
    event_type: order
    enabled: false
    steps: [{id: a, action: save, entity: Log, data: {id: paused}}]
  - name: second
    source: shop
    event_type: order
    steps: [{id: a, action: save, entity: Log, data: {id: second, seen: "=data.n * 2"}}]
  - name: other
    source: shop
    event_type: refund
    steps: [{id: a, action: save, entity: Log, data: {id: other}}]
"""


async def test_a_message_runs_every_enabled_matching_flow_in_declared_order(engine_for):
    engine = engine_for(TWO_FLOWS)
    runs = await engine.handle("shop", "order", {"n": 21})
    assert [r.flow for r in runs] == ["first", "second"]
    assert all(r.status is RunStatus.SUCCEEDED and r.trigger is Trigger.MESSAGE for r in runs)
    assert runs[0].message_id == runs[1].message_id is not None
    assert entities(engine, "Log") == {
        "first": {"id": "first", "seen": 21},
        "second": {"id": "second", "seen": 42},
    }


async def test_a_message_nobody_listens_to_runs_nothing(engine_for):
    engine = engine_for(TWO_FLOWS)
    assert await engine.handle("shop", "unknown", {}) == []
    assert engine.match("shop", "unknown").matched is False
    assert engine.match("shop", "order").flows == ("first", "second")


async def test_the_event_type_comes_from_the_source_path(engine_for):
    engine = engine_for("""
        sources: [{name: s, event_type_from: "$.kind"}]
        flows: [{name: f, source: s, event_type: hello, steps: [{id: a, action: log, message: hi}]}]
    """)
    assert engine.event_type_of("s", {"kind": "hello"}) == "hello"
    assert engine.event_type_of("s", {"other": 1}) is None
    assert engine.event_type_of("s", {"kind": 3}) is None
    assert engine.event_type_of("nope", {"kind": "hello"}) is None


CHAIN = """
events:
  - name: Placed
    properties:
      Id: {type: EntityReference, entity: Order, required: true}
      Amount: {type: Money, required: true}
flows:
  - name: Reserve
    inputs: {Id: {type: EntityReference, entity: Order, required: true}, Amount: {type: Money}}
    steps:
      - {id: check, action: validate, rules: [{check: "=inputs.Amount < 1000", message: too much}]}
      - {id: r, action: save, entity: Reservation, data: {id: "=inputs.Id"}}
  - name: Mail
    inputs: {Id: {type: EntityReference, entity: Order, required: true}}
    steps: [{id: m, action: save, entity: Mail, data: {id: "=inputs.Id"}}]
  - name: Boom
    inputs: {Amount: {type: Money}}
    steps:
      - {id: boom, action: fail, message: "='boom at ' + string(inputs.Amount)"}
handlers:
  - {name: reserve, event: Placed, flow: Reserve, mode: sync, bindings: {Id: Id, Amount: Amount}}
  - {name: mail, event: Placed, flow: Mail, mode: async, bindings: {Id: Id}}
"""


async def test_sync_handlers_run_inside_the_publish_and_async_ones_are_queued(engine_for):
    engine = engine_for(CHAIN)
    instance = await engine.publish("Placed", {"Id": "o1", "Amount": "12.50"})
    assert entities(engine, "Reservation") == {"o1": {"id": "o1"}}
    assert entities(engine, "Mail") == {}
    assert [m.body["handler"] for m in engine.backend.open_messages()] == ["mail"]
    runs = await engine.drain()
    assert [(r.handler, r.status) for r in runs] == [("mail", RunStatus.SUCCEEDED)]
    assert runs[0].event_id == instance.id
    assert entities(engine, "Mail") == {"o1": {"id": "o1"}}
    assert await engine.drain() == []


async def test_a_rejecting_sync_handler_rejects_the_publish_and_leaves_nothing(engine_for):
    engine = engine_for(CHAIN)
    with pytest.raises(Rejected, match="sync handler 'reserve' rejected Placed: too much"):
        await engine.publish("Placed", {"Id": "o1", "Amount": 5000})
    assert entities(engine, "Reservation") == {}
    assert len(engine.backend.all_events()) == 0
    assert engine.backend.open_messages() == []


async def test_a_failing_sync_handler_rolls_back_the_publisher_run(engine_for):
    engine = engine_for(
        CHAIN.replace(
            "flows:\n",
            """flows:
  - name: Publisher
    source: api
    event_type: order
    steps:
      - {id: save, action: save, entity: Order, data: {id: "$.id"}}
      - {id: pub, action: publish, event: Placed, properties: {Id: "$.id", Amount: "$.amount"}}
""",
        )
        + "  - {name: boom, event: Placed, flow: Boom, mode: sync, bindings: {Amount: Amount}}\n"
    )
    [run] = await engine.handle("api", "order", {"id": "o9", "amount": 3})
    assert run.status is RunStatus.FAILED
    assert "sync handler 'boom' of Placed failed" in (run.error or "")
    assert "boom at 3" in (run.error or "")
    assert [s.status.value for s in run.steps] == ["succeeded", "failed"]
    # the order, the reservation made by the first sync handler, the event and the queued job: all gone
    assert entities(engine, "Order") == {}
    assert entities(engine, "Reservation") == {}
    assert len(engine.backend.all_events()) == 0
    assert engine.backend.open_messages() == []
    # the trace of what was attempted is kept
    assert await engine.backend.get_run(run.id) == run
    assert {r.flow for r in await engine.backend.child_runs(run.id)} == {"Reserve", "Boom"}


async def test_publish_validates_properties_naming_each_bad_one(engine_for):
    engine = engine_for(CHAIN)
    with pytest.raises(EventValidationError) as info:
        await engine.publish("Placed", {"Amount": "1.234", "Extra": 1})
    assert info.value.problems == {
        "Id": "required, but missing",
        "Amount": "money allows at most 2 decimal places, got 1.234",
        "Extra": "not a declared property",
    }
    with pytest.raises(UnknownNameError, match="no event 'Plcaed' is defined; did you mean: Placed"):
        await engine.publish("Plcaed", {})


async def test_an_event_instance_is_immutable_and_traceable(engine_for):
    engine = engine_for(CHAIN)
    instance = await engine.publish("Placed", {"Id": "o1", "Amount": 3}, source="tests")
    assert (instance.type, instance.version, instance.source, instance.depth) == (
        "Placed",
        1,
        "tests",
        0,
    )
    assert instance.correlation_id == instance.id and instance.causation_id is None
    assert instance.time.tzinfo is not None and instance.time.utcoffset().total_seconds() == 0
    with pytest.raises(TypeError):
        instance.data["Id"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        instance.type = "Other"  # type: ignore[misc]
    assert await engine.backend.get_event(instance.id) is instance


async def test_events_published_by_handlers_carry_the_chain(engine_for):
    engine = engine_for("""
        events:
          - {name: A, properties: {n: {type: Integer, required: true}}}
          - {name: B, properties: {n: {type: Integer, required: true}}}
        flows:
          - {name: OnA, inputs: {n: {type: Integer}}, steps: [{id: p, action: publish, event: B, properties: {n: "=inputs.n + 1"}}]}
          - {name: OnB, inputs: {n: {type: Integer}}, steps: [{id: s, action: save, entity: Seen, data: {id: b, n: "=inputs.n"}}]}
        handlers:
          - {name: a, event: A, flow: OnA, mode: async, bindings: {n: n}}
          - {name: b, event: B, flow: OnB, mode: async, bindings: {n: n}}
    """)
    root = await engine.publish("A", {"n": 1})
    await engine.drain()
    chain = await engine.backend.event_chain(root.id)
    assert [e.type for e in chain] == ["A", "B"]
    assert chain[1].causation_id == root.id and chain[1].depth == 1
    assert entities(engine, "Seen")["b"]["n"] == 2


async def test_an_event_chain_deeper_than_the_limit_fails(engine_for):
    engine = engine_for(
        """
        events: [{name: Tick, properties: {n: {type: Integer, required: true}}}]
        flows:
          - {name: Again, inputs: {n: {type: Integer}}, steps: [{id: p, action: publish, event: Tick, properties: {n: "=inputs.n + 1"}}]}
        handlers: [{name: again, event: Tick, flow: Again, mode: async, bindings: {n: n}}]
    """,
        limits=RuntimeLimits(max_chain_depth=5),
    )
    await engine.publish("Tick", {"n": 0})
    runs = await engine.drain()
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 5 + [RunStatus.FAILED]
    assert "would make an event chain 6 deep; the limit is 5 (max_chain_depth)" in (runs[-1].error or "")
    assert len(engine.backend.all_events()) == 6


async def test_run_flow_validates_inputs_applies_defaults_and_returns_outputs(engine_for):
    engine = engine_for("""
        flows:
          - name: Greet
            inputs: {name: {type: String, required: true}, greeting: {type: String, default: Hello}}
            steps:
              - {id: out, action: output, values: {text: "=inputs.greeting + ', ' + inputs.name"}}
    """)
    run = await engine.run_flow("Greet", {"name": "Ada"})
    assert run.status is RunStatus.SUCCEEDED and run.trigger is Trigger.DIRECT
    assert run.outputs == {"text": "Hello, Ada"}
    with pytest.raises(EventValidationError, match="flow Greet inputs: name: required, but missing"):
        await engine.run_flow("Greet", {})
    with pytest.raises(UnknownNameError, match="no flow 'Gret' is defined; did you mean: Greet"):
        await engine.run_flow("Gret", {})


async def test_publish_from_python_raises_run_failed_carrying_the_handler_run(engine_for):
    engine = engine_for(CHAIN + "  - {name: boom, event: Placed, flow: Boom, mode: sync, bindings: {Amount: Amount}}\n")
    with pytest.raises(RunFailed) as info:
        await engine.publish("Placed", {"Id": "o1", "Amount": 1})
    assert info.value.run is not None and info.value.run.flow == "Boom"
    assert entities(engine, "Reservation") == {}


async def test_failed_async_jobs_are_kept_with_their_error(engine_for):
    engine = engine_for(
        CHAIN.replace(
            "mode: async, bindings: {Id: Id}",
            "mode: async, bindings: {Id: Id}}\n  - {name: late_boom, event: Placed, flow: Boom, mode: async, bindings: {Amount: Amount}",
        )
    )
    await engine.publish("Placed", {"Id": "o1", "Amount": 2})
    runs = await engine.drain()
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED, RunStatus.FAILED]
    [failed] = await engine.backend.dead_letters()
    assert failed.body["handler"] == "late_boom" and "boom at 2" in failed.errors[-1].error
    assert entities(engine, "Mail") == {"o1": {"id": "o1"}}


async def test_calls_nest_only_as_deep_as_the_limit(engine_for):
    engine = engine_for(
        """
        flows:
          - {name: a, inputs: {n: {type: Integer}}, steps: [{id: c, action: call, flow: b, inputs: {n: "=inputs.n + 1"}}]}
          - {name: b, inputs: {n: {type: Integer}}, steps: [{id: c, action: call, flow: c, inputs: {n: "=inputs.n + 1"}}]}
          - {name: c, inputs: {n: {type: Integer}}, steps: [{id: o, action: output, values: {n: "=inputs.n"}}]}
    """,
        limits=RuntimeLimits(max_call_depth=1),
    )
    run = await engine.run_flow("a", {"n": 0})
    assert run.status is RunStatus.FAILED
    assert "calls nest deeper than 1 (max_call_depth)" in (run.error or "")


async def test_a_run_stops_after_max_step_runs(engine_for):
    engine = engine_for(
        """
        flows:
          - name: loop
            inputs: {xs: {type: List}}
            steps:
              - {id: each, action: foreach, items: "=inputs.xs", steps: [{id: l, action: set, vars: {x: "=item"}}]}
    """,
        limits=RuntimeLimits(max_step_runs=50),
    )
    run = await engine.run_flow("loop", {"xs": list(range(100))})
    assert run.status is RunStatus.FAILED and "more than 50 steps (max_step_runs)" in (run.error or "")


async def test_limits_are_errors_not_hangs(engine_for):
    engine = engine_for(
        """
        flows:
          - name: loop
            inputs: {xs: {type: List}}
            steps:
              - {id: each, action: foreach, items: "=inputs.xs", steps: [{id: l, action: log, message: x}]}
    """,
        limits=RuntimeLimits(max_foreach_items=3),
    )
    run = await engine.run_flow("loop", {"xs": [1, 2, 3, 4]})
    assert run.status is RunStatus.FAILED
    assert "foreach got 4 items; at most 3 are allowed" in (run.error or "")


async def test_a_handler_run_fails_when_a_required_input_has_no_value(engine_for):
    engine = engine_for("""
        events: [{name: E, properties: {note: {type: String}}}]
        flows:
          - {name: F, inputs: {note: {type: String, required: true}}, steps: [{id: l, action: log, message: "=inputs.note"}]}
        handlers: [{name: h, event: E, flow: F, bindings: {note: note}}]
    """)
    await engine.publish("E", {})
    [run] = await engine.drain()
    assert run.status is RunStatus.FAILED
    assert run.error == "flow F inputs: note: required, but the event has no value for it"
