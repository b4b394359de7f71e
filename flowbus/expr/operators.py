"""Arithmetic, comparison and membership: what each operator does for each pair of types.

The compiled nodes call these with two evaluated operands and the evaluation state;
errors raised here carry no location, and the calling node adds its own.

Numbers: int with int stays int (bounded by ``max_int_digits``), except ``/`` whose
result is an int only when the division is exact, a decimal otherwise. Any decimal
operand makes the result a decimal, computed in :data:`DECIMAL_CONTEXT` (34
significant digits, ties to even). ``%`` takes the sign of the left operand, for ints
as for decimals (as in CEL and decimal.Decimal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation, Overflow
from typing import Any, Final

from flowbus.expr.errors import ExpressionLimitError, ExpressionRuntimeError
from flowbus.expr.limits import State
from flowbus.expr.values import DECIMAL_CONTEXT, NUMBERS, compare, equal, kind

__all__ = ["BINARY", "contains", "decimal_operation", "negate", "not_"]

_CONTEXT = DECIMAL_CONTEXT
_ONE_DAY: Final = timedelta(days=1)
# Exact number types: with these a decimal operation needs no further checks.
_NUMERIC: Final = frozenset({int, Decimal})


def decimal_operation(operation: Callable[[Any, Any], Decimal], left: object, right: object) -> Decimal:
    """Run a DECIMAL_CONTEXT operation, turning decimal signals into expression errors."""
    # (Division by zero is refused before any decimal operation, by its operator.)
    try:
        return operation(left, right)
    except Overflow:
        raise ExpressionLimitError("decimal result is too large (the largest exponent is 6144)") from None
    except InvalidOperation:
        raise ExpressionRuntimeError(f"cannot compute this exactly with {_CONTEXT.prec}-digit decimals") from None


def _type_error(verb: str, left: object, right: object, joiner: str = "and") -> ExpressionRuntimeError:
    return ExpressionRuntimeError(f"cannot {verb} {kind(left)} {joiner} {kind(right)}")


def _time_error(what: str) -> ExpressionRuntimeError:
    return ExpressionRuntimeError(f"{what} is out of range")


def _whole_days(duration: timedelta) -> timedelta:
    if duration % _ONE_DAY:
        raise ExpressionRuntimeError("a date can only move by whole days; use a timestamp for hours and minutes")
    return duration


def add(left: Any, right: Any, state: State) -> object:
    left_type = type(left)
    right_type = type(right)
    # The common cases first, each settled in a few comparisons.
    if left_type is int and right_type is int:
        result = left + right
        if -state.int_bound < result < state.int_bound:
            return result
        return state.check_int(result)
    if left_type is str and right_type is str:
        if len(left) + len(right) <= state.limits.max_string_bytes >> 2:
            return left + right
        state.check_str_length(len(left) + len(right))
        return state.check_str(left + right)
    if left_type in _NUMERIC and right_type in _NUMERIC:
        try:
            return _CONTEXT.add(left, right)
        except ArithmeticError:
            return decimal_operation(_CONTEXT.add, left, right)
    left_kind = kind(left)
    right_kind = kind(right)
    if left_kind in NUMBERS and right_kind in NUMBERS:
        return decimal_operation(_CONTEXT.add, left, right)
    if left_kind == "list" and right_kind == "list":
        state.check_items(len(left) + len(right))
        return [*left, *right]
    try:
        if right_kind == "duration" and left_kind in ("timestamp", "duration"):
            return left + right
        if left_kind == "duration" and right_kind == "timestamp":
            return right + left
        if left_kind == "date" and right_kind == "duration":
            return left + _whole_days(right)
        if left_kind == "duration" and right_kind == "date":
            return right + _whole_days(left)
    except OverflowError:
        raise _time_error(f"the {left_kind} + {right_kind}") from None
    raise _type_error("add", left, right)


def subtract(left: Any, right: Any, state: State) -> object:
    if type(left) is int and type(right) is int:
        return state.check_int(left - right)
    left_kind = kind(left)
    right_kind = kind(right)
    if left_kind in NUMBERS and right_kind in NUMBERS:
        return decimal_operation(_CONTEXT.subtract, left, right)
    try:
        if left_kind == right_kind and left_kind in ("timestamp", "date", "duration"):
            return left - right
        if right_kind == "duration" and left_kind == "timestamp":
            return left - right
        if right_kind == "duration" and left_kind == "date":
            return left - _whole_days(right)
    except OverflowError:
        raise _time_error(f"the {left_kind} - {right_kind}") from None
    raise ExpressionRuntimeError(f"cannot subtract {right_kind} from {left_kind}")


def multiply(left: Any, right: Any, state: State) -> object:
    left_type = type(left)
    right_type = type(right)
    if left_type is int and right_type is int:
        return state.check_int(left * right)
    if left_type in _NUMERIC and right_type in _NUMERIC:
        try:
            return _CONTEXT.multiply(left, right)
        except ArithmeticError:
            return decimal_operation(_CONTEXT.multiply, left, right)
    left_kind = kind(left)
    right_kind = kind(right)
    if left_kind in NUMBERS and right_kind in NUMBERS:
        return decimal_operation(_CONTEXT.multiply, left, right)
    try:
        if left_kind == "duration" and right_kind == "int":
            return left * right
        if left_kind == "int" and right_kind == "duration":
            return right * left
    except OverflowError:
        raise _time_error("the duration") from None
    raise _type_error("multiply", left, right, "by")


def divide(left: Any, right: Any, state: State) -> object:
    if type(left) is int and type(right) is int:
        if right == 0:
            raise ExpressionRuntimeError("division by zero")
        quotient, remainder = divmod(left, right)
        if remainder == 0:
            return state.check_int(quotient)
        return decimal_operation(_CONTEXT.divide, left, right)
    if kind(left) in NUMBERS and kind(right) in NUMBERS:
        if right == 0:
            # Checked first: decimal reports 0/0 as an invalid operation.
            raise ExpressionRuntimeError("division by zero")
        return decimal_operation(_CONTEXT.divide, left, right)
    raise _type_error("divide", left, right, "by")


def remainder(left: Any, right: Any, state: State) -> object:
    if type(left) is int and type(right) is int:
        if right == 0:
            raise ExpressionRuntimeError("division by zero")
        # Truncated remainder: the sign of the left operand, like decimal and CEL.
        result = abs(left) % abs(right)
        return -result if left < 0 else result
    if kind(left) in NUMBERS and kind(right) in NUMBERS:
        if right == 0:
            raise ExpressionRuntimeError("division by zero")
        return decimal_operation(_CONTEXT.remainder, left, right)
    raise ExpressionRuntimeError(f"cannot take the remainder of {kind(left)} by {kind(right)}")


def less_than(left: Any, right: Any, state: State) -> bool:
    return compare(left, right, "<")


def greater_than(left: Any, right: Any, state: State) -> bool:
    return compare(left, right, ">")


def at_most(left: Any, right: Any, state: State) -> bool:
    return compare(left, right, "<=")


def at_least(left: Any, right: Any, state: State) -> bool:
    return compare(left, right, ">=")


def contains(container: Any, item: Any, state: State) -> bool:
    """``item in container``: an element of a list, a key of a map, a substring."""
    container_kind = kind(container)
    if container_kind == "list":
        state.charge(len(container))
        return any(equal(element, item, state) for element in container)
    if container_kind == "map":
        return _has_key(container, item, state)
    if container_kind == "string":
        if kind(item) != "string":
            raise ExpressionRuntimeError(f"cannot look for {kind(item)} in a string")
        return str(item) in container
    raise ExpressionRuntimeError(f"'in' needs a list, map or string on its right, not {container_kind}")


def _has_key(mapping: Mapping[Any, object], key: object, state: State) -> bool:
    key_kind = kind(key)
    if key_kind in ("string", "int", "decimal", "null"):
        return key in mapping
    if key_kind == "bool":
        # true == 1 in Python: look for a bool key by type, not by hash.
        state.charge(len(mapping))
        return any(type(existing) is bool and existing == key for existing in mapping)
    raise ExpressionRuntimeError(f"a map key cannot be a {key_kind}")


def negate(value: Any, state: State) -> object:
    """``-value``"""
    if type(value) is int:
        return -value
    value_kind = kind(value)
    if value_kind == "decimal":
        return _CONTEXT.minus(value)
    if value_kind == "duration":
        try:
            return -value
        except OverflowError:
            raise _time_error("the duration") from None
    raise ExpressionRuntimeError(f"cannot negate {value_kind}")


def not_(value: object, state: State) -> bool:
    """``!value``"""
    if value is True:
        return False
    if value is False:
        return True
    raise ExpressionRuntimeError(f"'!' needs a bool, not {kind(value)}")


#: The binary operators other than && and || (which short-circuit in the compiler) and
#: == and != (see flowbus.expr.shapes.equality).
BINARY: Final[dict[str, Callable[[Any, Any, State], object]]] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "%": remainder,
    "<": less_than,
    "<=": at_most,
    ">": greater_than,
    ">=": at_least,
    "in": lambda left, right, state: contains(right, left, state),
}

# Types whose equality needs no help: compared with == when both sides share one.
FAST_EQUALITY: Final = frozenset({int, str, bool, type(None), Decimal, datetime, date, timedelta})
