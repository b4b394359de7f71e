"""What a run keeps of its journal while it runs and when it ends: bounded in count and in size."""

from __future__ import annotations

from flowbus.runtime.bounds import RuntimeLimits, bounded_steps
from flowbus.runtime.records import StepRun, StepStatus

WATCHED = """
flows:
  - name: watched
    inputs: {xs: {type: List}}
    steps:
      - {id: each, action: foreach, items: "=inputs.xs", steps: [{id: l, action: custom_watch}]}
"""


def test_a_string_of_control_characters_is_sized_as_the_json_it_becomes():
    # 3,000 characters, each written \u0001: 18,008 bytes of JSON, past the default 16 KiB
    [step] = bounded_steps([_step({"s": "\x01" * 3000})], RuntimeLimits())
    assert step.output["$cut"] == "value" and step.output["bytes"] == 6 * 3000 + len('{"s":""}')
    [step] = bounded_steps([_step({"s": "\x01" * 2000})], RuntimeLimits())
    assert step.output == {"s": "\x01" * 2000}


def _step(output):
    return StepRun("s", "s", "set", StepStatus.SUCCEEDED, None, output)


async def test_a_long_run_holds_a_bounded_journal_while_it_runs_and_counts_every_cut_step(engine_for):
    engine = engine_for(WATCHED, limits=RuntimeLimits(max_trace_steps=50))
    held: list[int] = []

    async def watch(ctx, params):
        held.append(len(ctx.run.step_runs))
        return None

    engine.register_action("custom_watch", watch)
    run = await engine.run_flow("watched", {"xs": list(range(5000))})

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
