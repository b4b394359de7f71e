"""Debounce, per handler or per flow: a burst of events with one key runs the flow once, with the last.

``debounce: {period: 10s, key: "=event.data.CustomerId", max_wait: 1m}``: each event of a key
waits ``period`` for the next; the run starts after ``period`` of quiet, or ``max_wait`` after
the burst's first event if the events keep coming. The key is an expression over ``event``, the
published event. How the queue holds a burst is :class:`flowbus.queue.Debounce`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from flowbus.config.base import Model
from flowbus.delays import DelayError, parse_delay
from flowbus.expr import DEFAULT_LIMITS, Expression, ExpressionError, compile_expression

#: the longest period or max_wait: a burst is a matter of seconds to hours, not of weeks
LONGEST = dt.timedelta(days=7)
#: the variables a debounce key may read: the published event (its data, source, type...)
KEY_VARIABLES = frozenset({"event"})
MAX_KEY_CHARS = 1000


def _duration(value: Any) -> dt.timedelta:
    """``10s``, ``1m``, ``500ms`` or a number of seconds, as a timedelta."""
    if isinstance(value, dt.timedelta):
        return value
    try:
        return dt.timedelta(seconds=parse_delay(value))
    except DelayError as error:
        if "negative" in str(error):
            raise ValueError(_NOT_POSITIVE) from None
        raise ValueError(
            f"{str(value)[:40]!r} is not a duration: give seconds or a number with a unit (500ms, 10s, 1m, 2h)"
        ) from None
    except OverflowError:  # a number past any timedelta
        raise ValueError(_TOO_LONG) from None


_NOT_POSITIVE = "must be longer than 0: a burst ends after some quiet, never at once"
_TOO_LONG = f"must be {LONGEST.days}d at most"


def _positive(value: dt.timedelta) -> dt.timedelta:
    if value <= dt.timedelta(0):
        raise ValueError(_NOT_POSITIVE)
    if value > LONGEST:
        raise ValueError(_TOO_LONG)
    return value


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(_duration),
    AfterValidator(_positive),
    WithJsonSchema({"type": ["string", "number"], "examples": ["10s", "1m", "500ms", 30]}),
]


class Debounce(Model):
    """Runs once per burst of events with one key, for the last event of the burst."""

    period: Duration = Field(description="the quiet after an event of the key before the run starts")
    key: str | None = Field(
        default=None,
        max_length=MAX_KEY_CHARS,
        description="an expression over `event` whose value names the burst; none: one burst for all events",
    )
    max_wait: Duration | None = Field(
        default=None, description="the latest the run starts after the burst's first event; none: no bound"
    )

    @field_validator("key")
    @classmethod
    def _an_expression(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("="):
            raise ValueError(
                f'{value!r} is not an expression: a key is computed from each event, as in "=event.data.CustomerId"'
            )
        compile_key(value)
        return value

    @model_validator(mode="after")
    def _max_wait_covers_period(self) -> Debounce:
        if self.max_wait is not None and self.max_wait < self.period:
            raise ValueError(
                f"`max_wait` ({_shown(self.max_wait)}) is shorter than `period` ({_shown(self.period)}): "
                "a burst would always run before its quiet; give a max_wait of at least the period"
            )
        return self


def compile_key(source: str) -> Expression:
    """The compiled expression of a key (``=`` first); a ValueError in flowbus's words."""
    try:
        return compile_expression(source[1:], limits=DEFAULT_LIMITS, variables=KEY_VARIABLES)
    except ExpressionError as error:
        raise ValueError(f"the key {source!r} does not compile: {error}") from None


def _shown(value: dt.timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds:g}s"
