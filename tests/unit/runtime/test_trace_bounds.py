"""A trace shows what was cut from it: the text and the data of a bounded run say where and how much."""

from __future__ import annotations

from flowbus.runtime.bounds import bounded_steps
from flowbus.runtime.engine import RuntimeLimits
from flowbus.runtime.records import StepRun, StepStatus
from flowbus.runtime.trace import render, to_data, trace_run

LOOP = """
flows:
  - name: loop
    inputs: {xs: {type: List}}
    steps:
      - {id: each, action: foreach, items: "=inputs.xs", steps: [{id: l, action: set, vars: {x: "=item"}}]}
"""


async def test_the_trace_of_a_bounded_run_says_where_and_how_many_step_runs_were_cut(engine_for):
    engine = engine_for(LOOP, limits=RuntimeLimits(max_trace_steps=20, max_trace_value_bytes=100))
    run = await engine.run_flow("loop", {"xs": ["y" * 200, *range(99)]})
    tree = await trace_run(engine.backend, run)

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


def test_a_string_of_control_characters_is_sized_as_the_json_it_becomes():
    # 3,000 characters, each written \u0001: 18,008 bytes of JSON, past the default 16 KiB
    [step] = bounded_steps([_step({"s": "\x01" * 3000})], RuntimeLimits())
    assert step.output["$cut"] == "value" and step.output["bytes"] == 6 * 3000 + len('{"s":""}')
    [step] = bounded_steps([_step({"s": "\x01" * 2000})], RuntimeLimits())
    assert step.output == {"s": "\x01" * 2000}


def _step(output):
    return StepRun("s", "s", "set", StepStatus.SUCCEEDED, None, output)


async def test_a_long_run_holds_a_bounded_journal_while_it_runs_and_counts_every_cut_step(engine_for):
    engine = engine_for(
        LOOP.replace('{id: l, action: set, vars: {x: "=item"}}', "{id: l, action: custom_watch}"),
        limits=RuntimeLimits(max_trace_steps=50),
    )
    held: list[int] = []

    async def watch(ctx, params):
        held.append(len(ctx.run.step_runs))
        return None

    engine.register_action("custom_watch", watch)
    run = await engine.run_flow("loop", {"xs": list(range(5000))})

    assert run.succeeded and len(held) == 5000
    assert max(held) <= 50 + 100  # cut down to the bound every 100 steps (compact_after)
    assert len(run.steps) == 50 and run.steps_cut == 5001 - 49  # cut many times, counted once
    assert [s.key for s in run.steps[:5]] == [f"each[{i}].l" for i in range(5)]
    assert run.steps[-1].key == "each" and run.steps[-2].key == "each[4999].l"


def test_a_value_with_keys_that_are_not_strings_is_sized_by_its_json():
    # a custom action may return such a dict: JSON writes its keys as strings
    [step] = bounded_steps([_step({1: "a" * 20_000})], RuntimeLimits())
    assert step.output["bytes"] == len('{"1":""}') + 20_000
    [step] = bounded_steps([_step({1: "a"})], RuntimeLimits())
    assert step.output == {1: "a"}
