"""What a run's trace keeps of its steps: bounded in count and in size, with markers for what was cut.

A run that runs away (a loop up to ``max_step_runs``, a step returning megabytes) would otherwise
store all of it, on every attempt. So a run's journal is bounded:

- at most ``max_trace_steps`` step runs are kept: the first tenth (how the run began) and the rest
  from the end (how it ended: a failing step and the steps on its path are journaled last). One
  marker step run stands where the others were cut, saying how many. A running run cuts its
  journal down every :func:`compact_after` steps, so it never holds a runaway journal either;
- a step input or output whose JSON is longer than ``max_trace_value_bytes`` is replaced by a
  value marker saying its size, with the start of its JSON. Only the kept steps are sized, once,
  when the run ends.

An attempt that will be retried keeps only its failing path (:func:`retried_attempt`): the retry
runs the same steps again, and only the last attempt keeps the whole (bounded) journal. A run's
own record (status, error, timings, attempt) is never cut.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flowbus.codec import CodecError, encode
from flowbus.events.frozen import FrozenDict
from flowbus.runtime.records import Run, StepRun, StepStatus


@dataclass(frozen=True, kw_only=True)
class RuntimeLimits:
    """Bounds on what one run may do, so no config or payload can run away."""

    max_chain_depth: int = 16
    #: events one root (a source message or a root event) may cause, all its chain's generations together
    max_chain_events: int = 5_000
    max_call_depth: int = 8
    max_foreach_items: int = 10_000
    max_step_runs: int = 100_000
    #: step runs a run's trace keeps: the first tenth and the rest from the end (flowbus.runtime.bounds)
    max_trace_steps: int = 1_000
    #: bytes of JSON a step's input or output keeps in a trace; a longer one is replaced by a marker
    max_trace_value_bytes: int = 16 * 1024


#: the key a marker value is told apart by (``{"$cut": "value", ...}``, ``{"$cut": "steps", ...}``)
CUT = "$cut"
#: characters of a cut value's JSON kept in its marker, so a reader sees what it was
CUT_HEAD_CHARS = 200
#: why step runs were cut: the bound on a run's steps, or an attempt that was retried
BOUND = "max_trace_steps"
RETRIED = "retried attempt"
#: why step runs were cut: they were past the project's retention of steps (the run itself is kept)
EXPIRED = "retention"

# an upper bound of the JSON of a value of a fixed-size type (a tagged decimal, time or duration)
_FIXED = 64
_FAILING = (StepStatus.FAILED, StepStatus.REJECTED, StepStatus.THROTTLED)
#: the exact types of fixed-size values (their subclasses take the general path)
_FIXED_KINDS = frozenset({type(None), bool, float, dt.datetime, dt.date, dt.timedelta})


def bounded_steps(steps: list[StepRun], limits: RuntimeLimits) -> tuple[StepRun, ...]:
    """The step runs a finished run keeps: at most ``max_trace_steps``, values of at most
    ``max_trace_value_bytes``. Only the kept steps are sized, once, when the run ends."""
    kept = cut_count(steps, limits.max_trace_steps)
    budget = limits.max_trace_value_bytes
    # the common case in one walk: when all values together are surely small, each one is
    if _small([(step.input, step.output) for step in kept], budget):
        return tuple(kept)
    return tuple(_cut_values(step, budget) for step in kept)


def retried_attempt(run: Run) -> Run:
    """``run`` as an attempt that will be retried keeps it: its record whole, and of its steps only
    the failing path (the failed or rejected steps at the end of its journal, innermost first),
    after one marker for the rest."""
    path = len(run.steps)
    while path and run.steps[path - 1].status in _FAILING:
        path -= 1
    if path == 0:
        return run
    cut = sum(_cut_count_of(step) for step in run.steps[:path])
    return run._replace(steps=(steps_marker("", cut, RETRIED), *run.steps[path:]))


def expired_steps(steps: Sequence[StepRun]) -> tuple[StepRun, ...]:
    """What a run keeps of its step runs once they are past their age: one marker saying how
    many there were (none for a run without steps, or whose steps expired already)."""
    if not steps or (len(steps) == 1 and steps[0].status is StepStatus.CUT and steps[0].output["reason"] == EXPIRED):
        return tuple(steps)
    return (steps_marker("", sum(_cut_count_of(step) for step in steps), EXPIRED),)


def steps_marker(after_key: str, count: int, reason: str) -> StepRun:
    """The marker step run standing for ``count`` cut step runs.

    Its key is the previous step's key with ``…`` added, so a trace nests it where that step
    nests (under the ``foreach`` both ran in)."""
    output = FrozenDict({CUT: "steps", "count": count, "reason": reason})
    return StepRun(f"{after_key}…", "", "", StepStatus.CUT, None, output)


def is_cut_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get(CUT) == "value"


def _cut_count_of(step: StepRun) -> int:
    return step.output["count"] if step.status is StepStatus.CUT else 1


def compact_after(limits: RuntimeLimits) -> int:
    """How many more steps a running run starts before its journal is cut down again: a journal
    holds at most about twice ``max_trace_steps`` step runs, and is cut once per that many steps."""
    return max(limits.max_trace_steps, 100)


def cut_count(steps: list[StepRun], limit: int) -> list[StepRun]:
    """At most ``limit`` step runs: the first tenth, one marker (which adds up a marker cut
    earlier in the same place), and the rest from the end."""
    if len(steps) <= limit:
        return steps
    head = limit // 10
    tail = max(limit - head - 1, 0)  # one place goes to the marker
    end = len(steps) - tail
    cut = sum(_cut_count_of(step) for step in steps[head:end])
    after = steps[head - 1].key if head else ""
    return [*steps[:head], steps_marker(after, cut, BOUND), *steps[end:]]


def _cut_values(step: StepRun, budget: int) -> StepRun:
    if _small((step.input, step.output), budget):
        return step
    return step._replace(input=_cut_value(step.input, budget), output=_cut_value(step.output, budget))


def _cut_value(value: Any, budget: int) -> Any:
    if _small(value, budget):
        return value
    try:
        text = encode(value)
    except (CodecError, ValueError, RecursionError):  # the store will say why it cannot be stored
        return value
    size = len(text.encode())
    if size <= budget:
        return value
    return FrozenDict({CUT: "value", "bytes": size, "head": text[:CUT_HEAD_CHARS]})


def _small(value: Any, budget: int) -> bool:
    """Whether ``value``'s JSON is surely at most ``budget`` bytes: an upper bound, added up with a
    stack and given up on as soon as it passes ``budget``, so a small value costs a few steps and
    a large one no more than ``budget`` does. A character may take 6 bytes (``\\u001f``)."""
    try:
        return _bounded_by(value, budget)
    except TypeError:  # a key that is not a string: encoding it says what it is
        return False


def _bounded_by(value: Any, budget: int) -> bool:
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            total += 6 * len(item) + 2
        elif isinstance(item, dict):
            total += 2
            for key, child in item.items():
                # the common scalars counted here, without a trip round the loop: a record's fields
                child_kind = type(child)
                if child_kind is str:
                    total += 6 * (len(key) + len(child)) + 6
                elif child_kind is Decimal:
                    total += 6 * len(key) + 4 + len(str(child)) + _FIXED
                elif child_kind in _FIXED_KINDS:
                    total += 6 * len(key) + 4 + _FIXED
                else:
                    total += 6 * len(key) + 4
                    stack.append(child)
        elif kind is list or kind is tuple:
            total += 2 + len(item)
            stack.extend(item)
        elif kind is int:
            total += item.bit_length() // 3 + 2  # log10(2) < 1/3
        elif kind is Decimal:
            total += len(str(item)) + _FIXED  # written {"$decimal": "<str>"}
        elif item is None or kind is bool or kind is float or isinstance(item, dt.date | dt.timedelta):
            total += _FIXED
        else:
            return False  # not a JSON value: encoding it says what it is
        if total > budget:
            return False
    return True
