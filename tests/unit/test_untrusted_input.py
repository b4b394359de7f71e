"""Property-based tests: untrusted configs and payloads only ever end in a value or a flowbus error.

Never a Python exception, a hang or unbounded work: every way in is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
from decimal import Decimal

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbus.config import ConfigError, load_config_text
from flowbus.engine import Engine
from flowbus.errors import FlowbusError
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.records import RunStatus
from flowbus.stores.memory import MemoryBackend

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6),
    st.text(max_size=20),
)
json_data = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)

names = st.sampled_from(["a", "b", "order", "Order", "x1", "OrderPlaced", "bad name", "", "store"])
expressions = st.one_of(
    st.sampled_from(
        [
            "=data.a",
            "=inputs.x + 1",
            "=size(data)",
            "=data.a.b.c",
            "=1 / 0",
            "=steps.nope.out",
            "=vars.total * 1.2",
            "=has(data.a) ? data.a : null",
            "=string(data) + 'x'",
            "=[1, 2][5]",
            "=data.a = 1",
            "=(((",
            "=unknown_fn(1)",
            "=item",
            "=index + 1",
            "=now()",
            "=split('a,b', ',')",
        ]
    ),
    st.text(max_size=30).map(lambda t: "=" + t),
    st.text(max_size=30).map(lambda t: "$" + t),
    st.sampled_from(["$", "$.a", "$.a[0]", "$..a", "$[?@.a > 1]", "$.payload"]),
)
values = st.one_of(scalars, expressions)
actions = st.sampled_from(
    ["set", "validate", "if", "switch", "foreach", "save", "upsert", "update", "delete", "get", "publish",
     "call", "output", "log", "fail", "custom_thing"]
)  # fmt: skip


@st.composite
def steps(draw, depth: int = 0):
    action = draw(actions)
    step: dict = {"id": draw(st.sampled_from(["s1", "s2", "s3", "s 4"])), "action": action}
    field_values = {
        "set": {"vars": {"v": draw(values)}},
        "validate": {"rules": [{"check": draw(values), "message": draw(values)}]},
        "if": {"condition": draw(values)},
        "switch": {"value": draw(values), "cases": [{"equals": draw(scalars), "steps": []}]},
        "foreach": {"items": draw(values)},
        "save": {"entity": "T", "data": draw(values)},
        "upsert": {"entity": "T", "data": draw(values)},
        "update": {"entity": "T", "record_id": draw(values), "data": draw(values)},
        "delete": {"entity": "T", "record_id": draw(values)},
        "get": {"entity": "T", "record_id": draw(values)},
        "publish": {"event": draw(names), "properties": {"n": draw(values)}},
        "call": {"flow": draw(names), "inputs": {"x": draw(values)}},
        "output": {"values": {"o": draw(values)}},
        "log": {"message": draw(values)},
        "fail": {"message": draw(values)},
        "custom_thing": {"with": {"a": draw(values)}},
    }[action]
    step.update(field_values)
    if action in ("if", "foreach") and depth < 2:
        key = "then" if action == "if" else "steps"
        step[key] = draw(st.lists(steps(depth + 1), min_size=1, max_size=2))
    if draw(st.booleans()) and draw(st.booleans()):
        step["bogus_field"] = 1
    return step


@st.composite
def configs(draw):
    return {
        "events": [{"name": "E", "properties": {"n": {"type": draw(st.sampled_from(["Integer", "String", "Money", "Nope"]))}}}],
        "flows": [
            {"name": "a", "inputs": {"x": {"type": "Object"}}, "steps": draw(st.lists(steps(), min_size=1, max_size=4))},
            {"name": "b", "source": "s", "event_type": "t", "steps": draw(st.lists(steps(), min_size=1, max_size=3))},
        ],
        "handlers": draw(st.lists(st.fixed_dictionaries({
            "name": st.sampled_from(["h1", "h2"]), "event": names, "flow": names,
            "mode": st.sampled_from(["sync", "async", "later"]), "bindings": st.dictionaries(names, names, max_size=2),
        }), max_size=2)),
    }  # fmt: skip


def _run(coro):
    return asyncio.run(coro)


@FAST
@given(st.text(max_size=300))
def test_any_text_loads_or_raises_a_config_error(text):
    with contextlib.suppress(ConfigError):
        load_config_text(text)


@FAST
@given(json_data)
def test_any_data_shape_loads_or_raises_a_config_error(data):
    for text in (json.dumps(data, default=str), yaml.safe_dump(json.loads(json.dumps(data, default=str)))):
        try:
            load_config_text(text)
        except ConfigError as exc:
            assert all(str(issue).startswith("<config>:") for issue in exc.issues)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), json_data)
def test_random_configs_load_or_fail_cleanly_and_their_runs_end_in_a_status(config, payload):
    text = yaml.safe_dump(json.loads(json.dumps(config, default=str)))
    try:
        loaded = load_config_text(text)
    except ConfigError as exc:
        assert exc.issues, "a config error always carries its issues"
        return
    limits = RuntimeLimits(max_foreach_items=50, max_step_runs=500, max_chain_depth=4, max_call_depth=3)
    engine = Engine(loaded, backend=MemoryBackend(), limits=limits)

    async def exercise():
        runs = await engine.handle("s", "t", payload)
        with contextlib.suppress(FlowbusError):
            runs.append(await engine.run_flow("a", {"x": payload} if isinstance(payload, dict) else {}))
        runs.extend(await engine.drain(max_messages=100))
        return runs

    for run in _run(exercise()):
        assert (run.error is None) == (run.status is RunStatus.SUCCEEDED)


SHOP_EVENT = textwrap.dedent("""
    events:
      - name: OrderPlaced
        properties:
          OrderId: {type: EntityReference, entity: Order, required: true}
          TotalAmount: {type: Money, required: true}
          OrderDate: {type: DateTime, required: true}
          Count: {type: Integer}
          Flag: {type: Boolean}
          Tags: {type: List, items: String}
          Id: {type: Guid}
          Day: {type: Date}
          Meta: {type: Object}
""")


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["OrderId", "TotalAmount", "OrderDate", "Count", "Flag", "Tags", "Id", "Day", "Meta", "Other"]),
        json_data,
        max_size=9,
    )
)
def test_any_payload_publishes_or_raises_a_validation_error_naming_properties(properties):
    engine = Engine(load_config_text(SHOP_EVENT), backend=MemoryBackend())
    try:
        instance = _run(engine.publish("OrderPlaced", properties))
    except FlowbusError as exc:
        assert getattr(exc, "problems", None), exc
        assert set(exc.problems) <= {*properties, "OrderId", "TotalAmount", "OrderDate"}
    else:
        assert isinstance(instance.data["TotalAmount"], Decimal)
        assert instance.data["OrderDate"].utcoffset().total_seconds() == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=30), st.integers(min_value=1, max_value=20))
def test_the_foreach_limit_holds_exactly(size, limit):
    loaded = load_config_text(
        textwrap.dedent("""
        flows:
          - name: loop
            inputs: {xs: {type: List}}
            steps: [{id: each, action: foreach, items: "=inputs.xs", steps: [{id: s, action: set, vars: {v: "=item"}}]}]
    """)
    )
    engine = Engine(loaded, backend=MemoryBackend(), limits=RuntimeLimits(max_foreach_items=limit))
    run = _run(engine.run_flow("loop", {"xs": list(range(size))}))
    assert (run.status is RunStatus.SUCCEEDED) == (size <= limit)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=8))
def test_the_chain_depth_limit_holds_exactly(limit):
    loaded = load_config_text(
        textwrap.dedent("""
        events: [{name: Tick, properties: {n: {type: Integer, required: true}}}]
        flows:
          - {name: Again, inputs: {n: {type: Integer}}, steps: [{id: p, action: publish, event: Tick, properties: {n: "=inputs.n + 1"}}]}
        handlers: [{name: again, event: Tick, flow: Again, mode: async, bindings: {n: n}}]
    """)
    )
    engine = Engine(loaded, backend=MemoryBackend(), limits=RuntimeLimits(max_chain_depth=limit))

    async def exercise():
        await engine.publish("Tick", {"n": 0})
        return await engine.drain()

    runs = _run(exercise())
    assert len(engine.backend.all_events()) == limit + 1
    assert [e.depth for e in engine.backend.all_events()] == list(range(limit + 1))
    assert runs[-1].status is RunStatus.FAILED and len(runs) == limit + 1
