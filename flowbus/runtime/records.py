"""Records of what ran: messages, runs and step runs. Frozen once made.

They are NamedTuples (as dramatiq's ``Message`` is): several are made for every run, and a
tuple is built in C, several times faster than a frozen dataclass.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, NamedTuple

from flowbus.events.frozen import FrozenDict


class RunStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"  #: every step finished
    FAILED = "failed"  #: a step failed; the run's unit of work was rolled back
    REJECTED = "rejected"  #: a validate step refused the input; never retried
    #: a step gave the message back until later (a rate limit, a ``Retry-After``): no attempt spent
    THROTTLED = "throttled"


class StepStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"  #: the action returned
    FAILED = "failed"  #: the action raised
    REJECTED = "rejected"  #: a validate rule did not hold
    REPLAYED = "replayed"  #: finished in an earlier attempt; its journaled output was reused
    #: gave its message back until later (a rate limit, a ``Retry-After``): no attempt spent
    THROTTLED = "throttled"
    #: not a step: a marker where step runs were cut from the trace; its output says how many and why
    CUT = "cut"


class Trigger(enum.StrEnum):
    MESSAGE = "message"  #: a trigger flow ran for a source message
    HANDLER = "handler"  #: a handler ran its flow for an event instance
    CALL = "call"  #: a call step ran a logic flow
    DIRECT = "direct"  #: a logic flow was run from Python or the CLI
    SCHEDULE = "schedule"  #: a schedule's tick ran a logic flow


class Message(NamedTuple):
    """A raw payload from a source, with the event type it was routed by."""

    id: str
    source: str
    type: str
    data: Any
    time: dt.datetime


class StepRun(NamedTuple):
    """One execution of one step. ``key`` tells nested steps apart: ``lines[2].save_line``."""

    key: str
    step_id: str
    action: str
    status: StepStatus
    input: Any
    output: Any
    error: str | None = None
    duration_s: float = 0.0


class Run(NamedTuple):
    """One execution of one flow, with the journal of its steps."""

    id: str
    flow: str
    trigger: Trigger
    status: RunStatus
    started_at: dt.datetime
    duration_s: float
    inputs: Any
    outputs: FrozenDict
    steps: tuple[StepRun, ...]
    error: str | None = None
    handler: str | None = None
    event_id: str | None = None
    message_id: str | None = None
    parent_run_id: str | None = None
    config_version: int | None = None
    #: 1 for the first attempt of a queued message, 2 for its first retry...
    attempt: int = 1

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def steps_cut(self) -> int:
        """How many step runs were cut from this run's trace (see :mod:`flowbus.runtime.bounds`)."""
        return sum(step.output["count"] for step in self.steps if step.status is StepStatus.CUT)
