"""What an HTTP target allows: a shared rate limit, and how long its ``Retry-After`` is honoured.

A period or a wait is written as every duration of a config is: seconds, or a number with a unit
(``500ms``, ``30s``, ``1m``, ``1h``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from flowbus.config.base import Model
from flowbus.delays import DelayError, parse_delay

#: the longest period or wait a target may name
LONGEST = dt.timedelta(days=1)
#: the most calls a rate limit may allow a period
MOST_CALLS = 1_000_000
#: added to a rate limit's period when its turns are spaced: a call reaches the server a little
#: after its turn, and one a little later than another, by up to this much, still counts in its window
SLACK_S = 0.1


def parse_period(value: Any) -> dt.timedelta:
    """A period written as every duration of a config is (:func:`flowbus.delays.parse_delay`, as a
    flow's ``rate_limit`` and a ``debounce`` read theirs): seconds, or a number with a unit (``500ms``,
    ``30s``, ``1m``, ``2h``, ``1d``); longer than zero and at most a day."""
    try:
        seconds = parse_delay(value, field="period")
    except DelayError as exc:
        raise ValueError(str(exc).removeprefix("period: ")) from None
    period = dt.timedelta(seconds=seconds)  # to the microsecond: checked as it will be used
    if period <= dt.timedelta(0):
        raise ValueError("a period must be longer than zero")
    if period > LONGEST:
        raise ValueError("a period is 1d at most")
    return period


Period = Annotated[
    dt.timedelta,
    BeforeValidator(parse_period),
    WithJsonSchema({"type": ["string", "number"], "examples": ["1m", "30s", "500ms"]}),
]


def _calls(value: int) -> int:
    if value < 1:
        raise ValueError(f"a rate limit allows 1 call a period at least, not {value}")
    if value > MOST_CALLS:
        raise ValueError(f"a rate limit allows {MOST_CALLS:,} calls a period at most")
    return value


class RateLimit(Model):
    """At most ``limit`` calls in any window of ``period``, shared by every step, worker and process
    calling the target (kept in the store: :mod:`flowbus.runtime.actions.rate`)."""

    limit: Annotated[int, AfterValidator(_calls)] = Field(description="calls allowed in any window of `period`")
    period: Period = Field(description="the window, such as 1m")

    @property
    def interval_s(self) -> float:
        """The spacing of the turns: ``(period + SLACK_S) / limit`` seconds, so that ``limit + 1``
        calls span more than ``period`` by :data:`SLACK_S` (the network's jitter, at the server)."""
        return (self.period.total_seconds() + SLACK_S) / self.limit
