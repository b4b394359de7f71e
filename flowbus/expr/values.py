"""The values expressions work on: their user-facing type names, how Python values are
admitted, and the equality and ordering shared by operators and functions.

Values: null (None), bool, int, decimal (decimal.Decimal), string (str), list (list or
tuple), map (any Mapping), timestamp (aware datetime), date, duration (timedelta).
A float is admitted as the decimal of its shortest repr; anything else is refused
with an error that names its Python type, and is never looked into.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Any, Final

from flowbus.expr.errors import ExpressionRuntimeError
from flowbus.expr.limits import State

__all__ = [
    "DECIMAL_CONTEXT",
    "MISSING",
    "NOTHING",
    "NUMBERS",
    "coerce",
    "compare",
    "describe",
    "equal",
    "kind",
    "list_keys",
]

#: Decimal arithmetic: the 34 significant digits and exponent range of IEEE 754
#: decimal128, ties rounded to even. Division by zero, overflow and invalid operations
#: raise (and become expression errors); inexact results such as 1/3 round quietly.
DECIMAL_CONTEXT: Final = Context(
    prec=34,
    rounding="ROUND_HALF_EVEN",
    Emin=-6143,
    Emax=6144,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


class _Nothing(enum.Enum):
    """The type of :data:`NOTHING`; an enum so that it stays one object when copied
    or pickled, and so that type checkers can narrow on ``is NOTHING``."""

    NOTHING = "NOTHING"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOTHING"


#: What a path returns when it found nothing: distinct from a found ``None`` (JSON null).
NOTHING: Final = _Nothing.NOTHING

#: Inside has() and coalesce(), what a missing field, key, item or variable yields
#: instead of an error. Never returned to a caller.
MISSING: Final = object()

_NoneType = type(None)

# Exact types and their user-facing names. Subclasses and other Mappings take the slow
# path in kind().
_KINDS: Final[dict[type, str]] = {
    _NoneType: "null",
    bool: "bool",
    int: "int",
    Decimal: "decimal",
    str: "string",
    list: "list",
    tuple: "list",
    dict: "map",
    datetime: "timestamp",
    date: "date",
    timedelta: "duration",
}

#: The kinds that compare and compute with each other as numbers.
NUMBERS: Final = frozenset({"int", "decimal"})

# Types admitted as they are, with no further check (the hot path of every field read).
_PLAIN: Final = frozenset({_NoneType, bool, int, str, list, tuple, dict, date, timedelta})


def kind(value: object) -> str:
    """The user-facing type name of an admitted value (see the module docstring)."""
    name = _KINDS.get(type(value))
    if name is not None:
        return name
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "list"
    for base in (int, Decimal, str, datetime, date, timedelta):
        if isinstance(value, base):
            return _KINDS[base]
    if isinstance(value, float):
        return "decimal"
    return f"Python {type(value).__name__}"


def coerce(value: object) -> object:
    """Admit a value coming from the caller's data, or raise a runtime error."""
    if type(value) in _PLAIN:
        return value
    return _coerce_slow(value)


def _coerce_slow(value: object) -> object:
    if isinstance(value, (dict, list, tuple)):
        return value
    if isinstance(value, Decimal):
        if value.is_finite():
            return value
        raise ExpressionRuntimeError(f"the decimal {value} is not a finite number")
    if isinstance(value, float):
        if math.isfinite(value):
            return Decimal(repr(value))
        raise ExpressionRuntimeError(f"the number {value!r} is not a finite number")
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ExpressionRuntimeError(
                f"the timestamp {value.isoformat()} has no time zone; expressions only handle aware timestamps"
            )
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (Mapping, list, tuple, date, timedelta)):
        return value
    raise ExpressionRuntimeError(
        f"unsupported value of Python type '{type(value).__name__}'; expressions handle "
        "null, bool, int, decimal, string, list, map, timestamp, date and duration"
    )


def describe(value: object, width: int = 40) -> str:
    """A short quoted rendering of a scalar for an error message."""
    if isinstance(value, str):
        text = value if len(value) <= width else value[: width - 3] + "..."
        return repr(text)
    return kind(value)


def equal(left: object, right: object, state: State, depth: int = 0) -> bool:
    """Equality as ``==`` sees it: numbers across int and decimal, other kinds only
    with themselves (``true == 1`` is false), lists and maps item by item."""
    left = coerce(left)
    right = coerce(right)
    left_kind = kind(left)
    right_kind = kind(right)
    if left_kind != right_kind:
        return left_kind in NUMBERS and right_kind in NUMBERS and left == right
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        if len(left) != len(right):
            return False
        state.descend(depth, len(left))
        return all(equal(a, b, state, depth + 1) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if len(left) != len(right):
            return False
        state.descend(depth, len(left))
        for key, value in left.items():
            if key not in right:
                return False
            if not equal(value, right[key], state, depth + 1):
                return False
        return True
    return bool(left == right)


_ORDERED: Final = frozenset({"int", "decimal", "string", "bool", "timestamp", "date", "duration"})


def compare(left: Any, right: Any, operator: str) -> bool:
    """``left operator right`` for one of < <= > >=, on two values of one ordered kind."""
    left_kind = kind(left)
    right_kind = kind(right)
    if not (left_kind == right_kind and left_kind in _ORDERED) and not (left_kind in NUMBERS and right_kind in NUMBERS):
        raise ExpressionRuntimeError(f"cannot compare {left_kind} and {right_kind} with '{operator}'")
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def list_keys(mapping: Mapping[object, object], shown: int = 10) -> str:
    """The first ``shown`` keys of a map in sorted order, for "it has: ..." messages."""
    total = len(mapping)
    if total == 0:
        return "it is an empty map"
    names = heapq.nsmallest(shown, (key if type(key) is str else repr(key) for key in mapping if _printable(key)))
    text = ", ".join(names)
    if total > len(names):
        text += f" and {total - len(names)} more"
    return f"it has: {text}"


def _printable(key: object) -> bool:
    return type(key) is str or (isinstance(key, int) and -(10**30) < key < 10**30)
