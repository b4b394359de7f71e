"""Conversions between value types: the string(), int(), decimal(), bool(), timestamp(),
date() and duration() functions, and the text forms they read and write.

Text is read strictly (ASCII digits only, no underscores, no NaN or Infinity) and
every produced string is measured against ``Limits.max_string_bytes`` before it is
built, so that converting a huge value fails fast instead of allocating it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from flowbus.expr.errors import ExpressionLimitError, ExpressionRuntimeError
from flowbus.expr.limits import State
from flowbus.expr.values import DECIMAL_CONTEXT, coerce, describe, kind

__all__ = [
    "format_duration",
    "parse_duration",
    "to_bool",
    "to_date",
    "to_decimal",
    "to_int",
    "to_string",
    "to_timestamp",
]

_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DURATION_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|us|µs|ns|d|h|m|s)")
_MICROSECONDS: Final[dict[str, int | Decimal]] = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
    "µs": 1,
    "ns": Decimal("0.001"),
}
_CONTEXT: Final = DECIMAL_CONTEXT
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND: Final = timedelta(seconds=1)
# Longer text cannot be a timestamp, date or duration; refuse it before parsing.
_MAX_TIME_TEXT: Final = 64


def _cannot(value: object, target: str, why: str = "") -> ExpressionRuntimeError:
    shown = describe(value)
    what = f"{kind(value)} {shown}" if isinstance(value, str) else shown
    return ExpressionRuntimeError(f"cannot convert {what} to {target}{why}")


# -- string() ------------------------------------------------------------------------


def to_string(state: State, value: object) -> str:
    """The text of a value; lists and maps as JSON."""
    if type(value) is str:
        return value
    parts: list[str] = []
    _write(value, state, parts, [0], 0)
    return state.check_str("".join(parts))


def _write(value: object, state: State, parts: list[str], length: list[int], depth: int) -> None:
    # ``length`` is a one-item running total, checked after every piece so that a
    # huge list stops being rendered as soon as it passes the limit.
    value = coerce(value)
    if isinstance(value, (list, tuple)):
        state.descend(depth, len(value))
        parts.append("[")
        for position, item in enumerate(value):
            if position:
                parts.append(", ")
            _write(item, state, parts, length, depth + 1)
        parts.append("]")
    elif isinstance(value, Mapping):
        state.descend(depth, len(value))
        parts.append("{")
        for position, (key, item) in enumerate(value.items()):
            if position:
                parts.append(", ")
            key_text = key if isinstance(key, str) else _scalar_text(coerce(key), state)
            parts.append(json.dumps(key_text, ensure_ascii=False))
            length[0] += len(key_text)
            parts.append(": ")
            _write(item, state, parts, length, depth + 1)
        parts.append("}")
    else:
        text = _scalar_text(value, state)
        if depth and isinstance(value, (str, datetime, date, timedelta)):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(text)
        length[0] += len(text)
        state.check_str_length(length[0])
    length[0] += 2
    state.check_str_length(length[0])


def _scalar_text(value: object, state: State) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        if not -state.int_bound < value < state.int_bound:
            state.check_int(value)
        try:
            return str(value)
        except ValueError:  # Python's own digit limit, if set lower than ours
            raise ExpressionLimitError("integer is too long to convert to a string") from None
    if isinstance(value, Decimal):
        return _decimal_text(value, state)
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    raise _cannot(value, "string")  # pragma: no cover - coerce() refused it already


def _decimal_text(value: Decimal, state: State) -> str:
    # Positional notation ("1000", "0.001"), never "1E+3"; measure it before building it.
    exponent = int(value.as_tuple().exponent)
    length = len(value.as_tuple().digits) + abs(exponent) + 3
    state.check_str_length(length)
    return format(value, "f")


# -- int(), decimal(), bool() --------------------------------------------------------


def to_int(state: State, value: object) -> int:
    """int(x): from an int, a decimal (truncated toward zero), a string of digits, a
    timestamp (seconds since 1970-01-01T00:00:00Z) or a duration (whole seconds)."""
    if type(value) is int:
        return value
    if isinstance(value, Decimal):
        if value.adjusted() >= state.limits.max_int_digits:
            state.check_int(state.int_bound)
        return state.check_int(int(value))
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            raise _cannot(value, "int")
        if len(value.lstrip("+-")) > state.limits.max_int_digits:
            state.check_int(state.int_bound)
        return int(value)
    if isinstance(value, datetime):
        return (value - _EPOCH) // _ONE_SECOND
    if isinstance(value, timedelta):
        seconds = value // _ONE_SECOND
        # Truncate toward zero like decimals, not toward minus infinity.
        return seconds + 1 if seconds < 0 and value % _ONE_SECOND else seconds
    raise _cannot(value, "int")


def to_decimal(state: State, value: object) -> Decimal:
    """decimal(x): from an int, a decimal, or a string such as '12.50' or '1e3'."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise _cannot(value, "decimal")
        if len(value) > 2 * DECIMAL_CONTEXT.prec + 16:
            raise _cannot(value, "decimal", " (too many digits)")
        number = Decimal(value)
        if not DECIMAL_CONTEXT.Emin <= number.adjusted() <= DECIMAL_CONTEXT.Emax:
            raise ExpressionLimitError(f"the decimal {describe(value)} is out of range")
        return DECIMAL_CONTEXT.plus(number)
    raise _cannot(value, "decimal")


def to_bool(state: State, value: object) -> bool:
    """bool(x): from a bool, or the strings 'true' and 'false' in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower() if len(value) <= 5 else ""
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    raise _cannot(value, "bool")


# -- timestamp(), date(), duration() -------------------------------------------------


def to_timestamp(state: State, value: object) -> datetime:
    """timestamp(x): from ISO 8601 text with a time zone ('2024-05-01T09:30:00Z'), a
    date (its midnight UTC), or an int (seconds since 1970-01-01T00:00:00Z)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + timedelta(seconds=value)
        except OverflowError:
            raise _cannot(value, "timestamp", " (out of range)") from None
    if not isinstance(value, str):
        raise _cannot(value, "timestamp")
    if len(value) > _MAX_TIME_TEXT or not value.isascii():
        raise _cannot(value, "timestamp", " (expected ISO 8601, like 2024-05-01T09:30:00Z)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _cannot(value, "timestamp", " (expected ISO 8601, like 2024-05-01T09:30:00Z)") from None
    if parsed.utcoffset() is None:
        raise _cannot(value, "timestamp", " (no time zone: add Z or an offset like +02:00)")
    return parsed


def to_date(state: State, value: object) -> date:
    """date(x): from 'YYYY-MM-DD' text, or a timestamp (the date in its own offset)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise _cannot(value, "date")
    if len(value) != 10 or not value.isascii():
        raise _cannot(value, "date", " (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _cannot(value, "date", " (expected YYYY-MM-DD)") from None


def parse_duration(state: State, value: object) -> timedelta:
    """duration(x): from text such as '90s', '1h30m', '1.5h', '-2d', '250ms'.

    Units: d, h, m, s, ms, us (or µs), ns; a leading '-' negates the whole.
    Precision is one microsecond (ties to even below it).
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise _cannot(value, "duration")
    text = value[1:] if value[:1] in "+-" else value
    if not text or len(value) > _MAX_TIME_TEXT:
        raise _cannot(value, "duration", " (expected a form like 1h30m, 90s or 1.5h)")
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        part = _CONTEXT.multiply(Decimal(match.group(1)), _MICROSECONDS[match.group(2)])
        total = _CONTEXT.add(total, part)
        position = match.end()
    if position != len(text):
        raise _cannot(value, "duration", " (expected a form like 1h30m, 90s or 1.5h)")
    microseconds = int(total.to_integral_value(rounding=ROUND_HALF_EVEN, context=_CONTEXT))
    try:
        result = timedelta(microseconds=microseconds)
    except OverflowError:
        raise _cannot(value, "duration", " (out of range)") from None
    return -result if value.startswith("-") else result


def format_duration(value: timedelta) -> str:
    """The text of a duration that duration() reads back: '1h30m', '90.5s' -> '1m30.5s'."""
    microseconds = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if microseconds < 0 else ""
    microseconds = abs(microseconds)
    hours, rest = divmod(microseconds, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    text = ""
    if hours:
        text += f"{hours}h"
    if minutes:
        text += f"{minutes}m"
    if seconds or fraction or not text:
        text += str(seconds)
        if fraction:
            text += f".{fraction:06d}".rstrip("0")
        text += "s"
    return sign + text
