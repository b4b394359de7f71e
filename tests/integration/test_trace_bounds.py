"""What a stored trace keeps of a run that runs away, on every backend: at most ``max_trace_steps``
step runs and ``max_trace_value_bytes`` of JSON per step value, with markers saying what was cut."""

from __future__ import annotations

import textwrap

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.records import RunStatus, StepStatus
from flowbus.trace import render, to_data, trace_run

LOOP = """
flows:
  - name: loop
    inputs: {xs: {type: List}}
    steps:
      - {id: each, action: foreach, items: "=inputs.xs", steps: [{id: l, action: set, vars: {x: "=item"}}]}
  - name: big
    steps:
      - {id: fetch, action: custom_fetch, with: {size: 1000000}}
      - {id: after, action: set, vars: {done: true}}
"""

MEGABYTE = "x" * 1_000_000


async def fetch(ctx, params):
    return {"body": "x" * params["with"]["size"]}


def engine_on(backend, limits: RuntimeLimits) -> Engine:
    engine = Engine(load_config_text(textwrap.dedent(LOOP)), backend=backend, limits=limits)
    engine.register_action("custom_fetch", fetch)
    return engine


async def test_a_run_that_reaches_max_step_runs_stores_at_most_max_trace_steps_with_a_marker(backend):
    engine = engine_on(backend, RuntimeLimits(max_step_runs=500, max_trace_steps=50))
    run = await engine.run_flow("loop", {"xs": list(range(1000))})
    stored = await backend.get_run(run.id)

    assert stored.status is RunStatus.FAILED
    assert stored.error == "step 'each' (foreach): the run executed more than 500 steps (max_step_runs)"
    assert len(stored.steps) == 50
    # 500 step runs were journaled (the foreach counts first, then 499 set steps; the next was
    # refused): 49 are kept beside the marker
    assert stored.steps_cut == 500 - 49
    head, marker, tail = stored.steps[:5], stored.steps[5], stored.steps[6:]
    assert [s.key for s in head] == [f"each[{i}].l" for i in range(5)]
    assert marker.status is StepStatus.CUT and marker.key == "each[4].l…"
    assert marker.output == {"$cut": "steps", "count": 451, "reason": "max_trace_steps"}
    assert [s.key for s in tail[:-1]] == [f"each[{i}].l" for i in range(456, 499)]
    assert (tail[-1].key, tail[-1].status) == ("each", StepStatus.FAILED)  # the failing step is kept


async def test_a_huge_step_output_is_stored_cut_with_its_size(backend):
    engine = engine_on(backend, RuntimeLimits())
    run = await engine.run_flow("big")
    stored = await backend.get_run(run.id)

    assert stored.status is RunStatus.SUCCEEDED and stored.steps_cut == 0
    fetched, after = stored.steps
    assert fetched.input == {"with": {"size": 1_000_000}}  # a small input is kept as it is
    body = '{"body":"' + MEGABYTE + '"}'
    assert fetched.output == {"$cut": "value", "bytes": len(body), "head": body[:200]}
    assert after.output == {"done": True}


async def test_the_stored_trace_of_a_bounded_run_says_where_and_how_many_step_runs_were_cut(backend):
    engine = engine_on(backend, RuntimeLimits(max_trace_steps=20, max_trace_value_bytes=100))
    run = await engine.run_flow("loop", {"xs": ["y" * 200, *range(99)]})
    tree = await trace_run(backend, await backend.get_run(run.id))

    text = render(tree)
    lines = text.splitlines()
    marker = next(i for i, line in enumerate(lines) if "cut here" in line)
    assert lines[marker].endswith(
        "… 82 step runs cut here: a trace keeps the first tenth of max_trace_steps step runs and the rest from the end"
    )
    assert "step each[1].l" in lines[marker - 3] and "step each[84].l" in lines[marker + 1]
    assert '    in:  (cut: 217 bytes of JSON) {"vars":{"x":"yyy' in text  # the first item's input

    data = to_data(tree)
    assert data["steps_cut"] == 101 - 19  # a set step per item and the foreach; 19 kept beside the marker
    [each] = data["children"]
    cut = [child for child in each["children"] if child["kind"] == "cut"]
    note = lines[marker].split("… ", 1)[1]
    assert cut == [
        {"kind": "cut", "key": "each[1].l…", "count": 82, "reason": "max_trace_steps", "note": note, "children": []}
    ]
    assert each["children"][0]["input"] == {
        "$cut": "value",
        "bytes": len('{"vars":{"x":""}}') + 200,
        "head": '{"vars":{"x":"' + "y" * 186,
    }
