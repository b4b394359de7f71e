"""Flow control in the config: ``concurrency``, ``rate_limit`` and ``priority`` of flows and handlers.

What the fields mean at run time, and how the queue enforces them, is :mod:`flowbus.limits`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from flowbus.config.base import Model
from flowbus.delays import DelayError, parse_delay
from flowbus.queue import DEFAULT_PRIORITY

__all__ = ["DEFAULT_PRIORITY", "MAX_PERIOD_S", "Concurrency", "RunRateLimit"]

#: the longest rate-limit period: a day
MAX_PERIOD_S = 86400
MAX_KEY_CHARS = 1024


def _key(value: str | None) -> str | None:
    if value is not None and not value.startswith("="):
        raise ValueError(f'{value!r} is not an expression; a key is an `=` expression, like "=event.data.CustomerId"')
    return value


#: the key of a concurrency or rate limit: an `=` expression, checked as one where it is written
Key = Annotated[
    str | None,
    Field(max_length=MAX_KEY_CHARS, description="an `=` expression over the event; none: one pool"),
    AfterValidator(_key),
]


class Concurrency(Model):
    """At most ``limit`` runs at once per value of ``key`` (no key: per flow or handler)."""

    limit: int = Field(ge=1, le=100_000, description="runs at once per key value")
    key: Key = None


class RunRateLimit(Model):
    """At most ``limit`` runs per ``period`` per value of ``key``, spread evenly over the period."""

    limit: int = Field(ge=1, le=1_000_000, description="runs per period per key value")
    period: float = Field(description="a duration: seconds, or a number with a unit (500ms, 10s, 1m, 1h, 1d)")
    key: Key = None

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        try:
            seconds = parse_delay(value, field="period")
        except DelayError as exc:
            raise ValueError(str(exc).removeprefix("period: ")) from None
        if seconds <= 0:
            raise ValueError(f"a period must be longer than zero, got {value!r}")
        if seconds > MAX_PERIOD_S:
            raise ValueError(f"a period is at most a day ({MAX_PERIOD_S:,} s), got {value!r}")
        return seconds

    @property
    def interval_s(self) -> float:
        """The least time between two admitted runs of one key: ``period / limit``."""
        return self.period / self.limit
