"""What the built-in functions do; :mod:`flowbus.expr.functions` lists them.

Every implementation takes the evaluation :class:`State` first (for limits and the
operation budget), then its arguments, already evaluated; it raises expression errors
without a location, which the calling node adds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flowbus.expr.errors import ExpressionRuntimeError
from flowbus.expr.limits import State
from flowbus.expr.operators import decimal_operation, negate
from flowbus.expr.values import DECIMAL_CONTEXT, MISSING, NUMBERS, coerce, compare, equal, kind

__all__ = [
    "abs_",
    "coalesce",
    "contains",
    "ends_with",
    "join",
    "lower",
    "max_",
    "min_",
    "new_uuid",
    "now",
    "round_",
    "size",
    "split",
    "starts_with",
    "sum_",
    "today",
    "trim",
    "type_of",
    "upper",
]


def _kind_error(function: str, expected: str, value: object) -> ExpressionRuntimeError:
    return ExpressionRuntimeError(f"{function}() takes {expected}, not {kind(value)}")


def _string(function: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise _kind_error(function, "a string", value)


def _items(function: str, value: object) -> list[object] | tuple[object, ...]:
    if isinstance(value, (list, tuple)):
        return value
    raise _kind_error(function, "a list", value)


# -- sizes and text ------------------------------------------------------------------


def size(state: State, value: object) -> int:
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    raise _kind_error("size", "a string, list or map", value)


def lower(state: State, value: object) -> str:
    text = _string("lower", value)
    state.check_str_length(len(text))
    return state.check_str(text.lower())


def upper(state: State, value: object) -> str:
    text = _string("upper", value)
    state.check_str_length(len(text))
    return state.check_str(text.upper())


def trim(state: State, value: object) -> str:
    return state.check_str(_string("trim", value).strip())


def contains(state: State, container: object, item: object) -> bool:
    if isinstance(container, str):
        return _string("contains", item) in container
    if isinstance(container, (list, tuple)):
        state.charge(len(container))
        return any(equal(element, item, state) for element in container)
    raise _kind_error("contains", "a string or a list", container)


def starts_with(state: State, text: object, prefix: object) -> bool:
    return _string("startsWith", text).startswith(_string("startsWith", prefix))


def ends_with(state: State, text: object, suffix: object) -> bool:
    return _string("endsWith", text).endswith(_string("endsWith", suffix))


def join(state: State, items: object, separator: object = "") -> str:
    parts = _items("join", items)
    glue = _string("join", separator)
    state.charge(len(parts))
    length = len(glue) * max(len(parts) - 1, 0)
    for position, part in enumerate(parts):
        if not isinstance(part, str):
            raise ExpressionRuntimeError(f"join() takes a list of strings; item {position} is {kind(part)}")
        length += len(part)
    state.check_str_length(length)
    return state.check_str(glue.join(parts))  # type: ignore[arg-type]


def split(state: State, text: object, separator: object) -> list[str]:
    whole = _string("split", text)
    glue = _string("split", separator)
    if not glue:
        # As in CEL: an empty separator splits into characters.
        state.check_items(len(whole))
        state.charge(len(whole))
        return list(whole)
    count = whole.count(glue) + 1
    state.check_items(count)
    state.charge(count)
    return whole.split(glue)


# -- numbers -------------------------------------------------------------------------


def round_(state: State, value: object, places: object = None) -> object:
    """Ties round away from zero (2.5 -> 3, -2.5 -> -3), as most people expect of money.

    Without places the result is an int. With places, an int stays an int (rounded to
    tens, hundreds... when places is negative) and a decimal keeps exactly that many
    places.
    """
    if kind(value) not in NUMBERS:
        raise _kind_error("round", "a number", value)
    if places is None:
        digits = 0
    elif isinstance(places, int) and not isinstance(places, bool):
        digits = places
    else:
        raise ExpressionRuntimeError(f"round() takes an int number of places, not {kind(places)}")
    if isinstance(value, int):
        if digits >= 0:
            return value
        # Exact integer rounding: a decimal would drop digits past 34.
        if -digits > state.limits.max_int_digits:
            return 0
        step = 10**-digits
        magnitude = (abs(value) + step // 2) // step * step
        return state.check_int(-magnitude if value < 0 else magnitude)
    number: Any = value
    if places is None and number.as_tuple().exponent >= 0:
        return _whole(state, number)
    if not -state.limits.max_int_digits <= digits <= state.limits.max_int_digits:
        raise ExpressionRuntimeError(f"round() cannot keep {digits} places")
    exponent = Decimal((0, (1,), -digits))
    try:
        rounded = number.quantize(exponent, ROUND_HALF_UP, DECIMAL_CONTEXT)
    except InvalidOperation:
        raise ExpressionRuntimeError(
            f"round() to {digits} places needs more than {DECIMAL_CONTEXT.prec} digits"
        ) from None
    return _whole(state, rounded) if places is None else rounded


def _whole(state: State, number: Decimal) -> int:
    if number.adjusted() >= state.limits.max_int_digits:
        return state.check_int(state.int_bound)
    return state.check_int(int(number))


def abs_(state: State, value: object) -> object:
    if isinstance(value, Decimal):
        return DECIMAL_CONTEXT.abs(value)
    if isinstance(value, timedelta):
        return negate(value, state) if value < timedelta(0) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value)
    raise _kind_error("abs", "a number or a duration", value)


def _extreme(function: str, state: State, args: tuple[object, ...], pick_less: bool) -> object:
    values: Any = args
    if len(args) == 1:
        if not isinstance(args[0], (list, tuple)):
            raise ExpressionRuntimeError(f"{function}() takes a list, or several values; not one {kind(args[0])}")
        values = args[0]
        if not values:
            raise ExpressionRuntimeError(f"{function}() of an empty list")
    state.charge(len(values))
    best = coerce(values[0])
    for value in values[1:]:
        candidate = coerce(value)
        try:
            better = compare(candidate, best, "<") if pick_less else compare(best, candidate, "<")
        except ExpressionRuntimeError:
            raise ExpressionRuntimeError(
                f"{function}() needs values that compare with each other, not {kind(best)} and {kind(candidate)}"
            ) from None
        if better:
            best = candidate
    return best


def min_(state: State, *args: object) -> object:
    return _extreme("min", state, args, pick_less=True)


def max_(state: State, *args: object) -> object:
    return _extreme("max", state, args, pick_less=False)


def sum_(state: State, items: object) -> object:
    values = _items("sum", items)
    state.charge(len(values))
    total: Any = 0
    for position, value in enumerate(values):
        item = coerce(value)
        if kind(item) not in NUMBERS:
            raise ExpressionRuntimeError(f"sum() takes a list of numbers; item {position} is {kind(item)}")
        if type(total) is int and type(item) is int:
            total = state.check_int(total + item)
        else:
            total = decimal_operation(DECIMAL_CONTEXT.add, total, item)
    return total


# -- lazy ----------------------------------------------------------------------------


def coalesce(state: State, *thunks: Callable[[State], object]) -> object:
    """The first argument that exists and is not null; a missing field counts as null."""
    for thunk in thunks:
        value = thunk(state)
        if value is not None and value is not MISSING:
            return value
    return None


# -- time and identity ---------------------------------------------------------------


def now(state: State) -> datetime:
    return datetime.now(UTC)


def today(state: State) -> date:
    return datetime.now(UTC).date()


def new_uuid(state: State) -> str:
    return str(uuid.uuid4())


def type_of(state: State, value: object) -> str:
    return kind(value)
