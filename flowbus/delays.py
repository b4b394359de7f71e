"""When a delayed message becomes visible: a delay or a not-before time, read and bounded.

Every way in takes the same two inputs and answers with one time (or None: at once): the
``publish`` step, ``Engine.publish``/``send``, the CLI's ``--delay``/``--not-before`` and the
HTTP ingress's ``X-Delay``/``X-Not-Before`` headers (or the ``delay``/``notbefore`` CloudEvents
extension attributes). A delay is seconds (a number) or a number with a unit (``500ms``, ``90s``,
``10m``, ``2h``, ``7d``); a not-before time is ISO 8601 with an offset. A time in the past means
at once. Nothing may be delayed more than :data:`MAX_DELAY_S` ahead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from decimal import Decimal
from typing import Any

from flowbus.errors import FlowbusError

#: the furthest ahead a message may be delayed: 365 days
MAX_DELAY_S = 365 * 86400

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(-?\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)?")


class DelayError(FlowbusError):
    """A delay or a not-before time that flowbus cannot honour."""

    permanent = True  # the same value fails the same way on every attempt


_GIVE_DELAY = "give seconds or a number with a unit (90s, 10m, 2h)"
_EXAMPLE_TIME = "2026-12-01T07:00:00Z"


def _shown(value: Any) -> str:
    """``value`` as an error quotes it: its repr, cut short (it may be a header or a CloudEvent's
    attribute of any length)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"


def parse_delay(value: Any, *, field: str = "delay") -> float:
    """Seconds of a delay: a number, or a string like ``90s``; refuses negatives and nonsense."""
    if isinstance(value, bool):
        raise DelayError(f"{field}: {_shown(value)} is not a delay; {_GIVE_DELAY}")
    if isinstance(value, int | float | Decimal):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise DelayError(f"{field}: {_shown(value)} seconds is past the longest delay, {MAX_DELAY_S:,} s") from None
    elif isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str) and (found := _DURATION.fullmatch(value.strip())):
        seconds = float(found[1]) * _UNITS[found[2] or "s"]
    else:
        raise DelayError(f"{field}: {_shown(value)} is not a delay; {_GIVE_DELAY}")
    if not seconds >= 0:  # NaN too
        raise DelayError(f"{field}: a delay cannot be negative, got {_shown(value)}")
    return seconds


def parse_time(value: Any, *, field: str = "not_before") -> dt.datetime:
    """An aware time, from a datetime or ISO 8601 text with an offset (``Z`` allowed)."""
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):  # not a time: refused below, in flowbus's words
            value = dt.datetime.fromisoformat(value.strip())
    if not isinstance(value, dt.datetime):
        raise DelayError(f"{field}: {_shown(value)} is not a time; give ISO 8601 with an offset, like {_EXAMPLE_TIME}")
    if value.tzinfo is None:
        raise DelayError(f"{field}: {value.isoformat()} has no offset; give one (Z for UTC), flowbus will not guess")
    return value


def not_before(
    delay: Any = None, at: Any = None, *, now: dt.datetime | None = None, field: str = "delay"
) -> dt.datetime | None:
    """The time a message becomes visible, given a delay or a not-before time (not both); None
    when neither is given or the time has passed. Raises :class:`DelayError` in flowbus's words."""
    if delay is None and at is None:
        return None
    if delay is not None and at is not None:
        raise DelayError(f"{field}: give a delay or a not-before time, not both")
    now = now or dt.datetime.now(dt.UTC)
    if delay is not None:
        seconds = parse_delay(delay, field=field)
        if seconds > MAX_DELAY_S:
            raise DelayError(f"{field}: {delay!r} is more than the longest delay, {MAX_DELAY_S // 86400} days")
        return now + dt.timedelta(seconds=seconds) if seconds > 0 else None
    when = parse_time(at, field=field)
    ahead = (when - now).total_seconds()
    if ahead > MAX_DELAY_S:
        raise DelayError(f"{field}: {when.isoformat()} is more than {MAX_DELAY_S // 86400} days ahead")
    return when.astimezone(dt.UTC) if ahead > 0 else None
