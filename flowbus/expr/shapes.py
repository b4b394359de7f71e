"""Evaluators specialized for the most common shapes of expression.

They give exactly the results and errors of the general evaluators in
:mod:`flowbus.expr.compiler`, with fewer Python calls: configs are full of
``data.total * 1.2``, ``data.status == 'paid'`` and ``a + ' ' + b``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flowbus.expr.errors import ExpressionError
from flowbus.expr.limits import Evaluator, State
from flowbus.expr.operators import FAST_EQUALITY, add
from flowbus.expr.values import equal

__all__ = ["Operand", "arithmetic_constant", "equality", "sum_chain"]

# "No value yet": None is a value.
_NONE = object()


#: An operand of a sum chain: its evaluator (or None for a literal), the literal's
#: value, and the column of the '+' before it.
Operand = tuple[Evaluator | None, object, int]


def sum_chain(first: Evaluator, rest: tuple[Operand, ...], source: str) -> Evaluator:
    """``a + b + c + ...`` as one closure: strings are joined once, not pairwise.

    The result, the errors and the order of evaluation are those of the pairwise
    additions: operands are evaluated left to right and, from the first one that is
    not a string, added one by one.
    """

    def sum_chain(state: State) -> object:
        total: Any = first(state)
        position = 0
        if type(total) is str:
            parts = [total]
            length = len(total)
            pending: object = _NONE
            for evaluate, constant, _ in rest:
                value = constant if evaluate is None else evaluate(state)
                if type(value) is not str:
                    pending = value
                    break
                parts.append(value)
                length += len(value)
            if length <= state.limits.max_string_bytes >> 2:
                total = "".join(parts)
            else:
                # Near the limit: add pairwise so that the error names the right '+'.
                total = parts[0]
                for part, (_, _, column) in zip(parts[1:], rest, strict=False):
                    total = _add(total, part, state, source, column)
            position = len(parts) - 1
            if pending is _NONE:
                return total
            # The first operand that is not a string: add it, then the rest one by one.
            total = _add(total, pending, state, source, rest[position][2])
            position += 1
        for evaluate, constant, column in rest[position:]:
            value = constant if evaluate is None else evaluate(state)
            total = _add(total, value, state, source, column)
        return total

    return sum_chain


def arithmetic_constant(
    left: Evaluator,
    constant: object,
    operation: Callable[[Any, Any, State], object],
    decimal_operation: Callable[[Any, Any], Decimal],
    source: str,
    column: int,
) -> Evaluator:
    """``x * 1.2`` and the like: decimal arithmetic with a number literal, in one call."""
    constant_is_decimal = type(constant) is Decimal

    def arithmetic_constant(state: State) -> object:
        value = left(state)
        kind_of = type(value)
        if kind_of is Decimal or (constant_is_decimal and kind_of is int):
            try:
                return decimal_operation(value, constant)
            except ArithmeticError:
                pass  # the general operation below raises the right error
        try:
            return operation(value, constant, state)
        except ExpressionError as error:
            raise error.locate(source, column) from None

    return arithmetic_constant


def equality(left: Evaluator, right: Evaluator, negated: bool, source: str, column: int) -> Evaluator:
    def equality(state: State) -> object:
        a = left(state)
        b = right(state)
        kind_a = type(a)
        # Same plain type: Python's == is ours (true == 1 never gets here).
        if kind_a is type(b) and kind_a in FAST_EQUALITY:
            return (a != b) if negated else (a == b)
        try:
            return equal(a, b, state) is not negated
        except ExpressionError as error:
            raise error.locate(source, column) from None

    return equality


def _add(left: object, right: object, state: State, source: str, column: int) -> object:
    try:
        return add(left, right, state)
    except ExpressionError as error:
        raise error.locate(source, column) from None
