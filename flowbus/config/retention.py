"""How long a project keeps what it records: its ``retention`` policy (see :mod:`flowbus.retention`).

A duration is written as a whole number and a unit: ``90m``, ``36h``, ``30d``, ``2w``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from flowbus.config.base import Model

_DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
_UNITS = {
    "m": dt.timedelta(minutes=1),
    "h": dt.timedelta(hours=1),
    "d": dt.timedelta(days=1),
    "w": dt.timedelta(weeks=1),
}
#: the shortest age anything is kept for: a sweep must never race the runs still writing it
SHORTEST = dt.timedelta(minutes=10)
#: the longest age a policy may name (about 100 years)
LONGEST = dt.timedelta(days=36_500)


def parse_duration(value: Any) -> Any:
    """``30d`` as a :class:`~datetime.timedelta`; a timedelta as it is; anything else is refused."""
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a duration is text such as 30d, 36h or 90m, not {type(value).__name__}")
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a duration: write a whole number and a unit (m, h, d, w), such as 30d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _within_bounds(value: dt.timedelta) -> dt.timedelta:
    if value < SHORTEST:
        raise ValueError("a record is kept 10m at least: a sweep must not race the runs still writing it")
    if value > LONGEST:
        raise ValueError("a record is kept 36500d at most")
    return value


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_within_bounds),
    WithJsonSchema({"type": "string", "pattern": _DURATION.pattern, "examples": ["30d", "36h", "2w"]}),
]


class Retention(Model):
    """How long each kind of record is kept, counted from when it was made."""

    events: Duration = Field(default=dt.timedelta(days=90), description="event instances")
    runs: Duration = Field(default=dt.timedelta(days=30), description="run records: status, timings, error")
    steps: Duration = Field(default=dt.timedelta(days=14), description="the step runs of a run (its detail)")
    messages: Duration = Field(default=dt.timedelta(days=7), description="finished queue messages")
    dead_letters: Duration = Field(default=dt.timedelta(days=90), description="dead messages not blocking a group")

    @model_validator(mode="after")
    def _traces_stay_whole(self) -> Retention:
        # a kept run's trace shows its event, and a kept event's trace its runs' status
        if self.steps > self.runs:
            raise ValueError("`steps` cannot be kept longer than `runs`: a step run is part of its run")
        if self.runs > self.events:
            raise ValueError("`runs` cannot be kept longer than `events`: a run's trace starts at its event")
        return self
