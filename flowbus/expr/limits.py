"""Hard limits on what one path or expression may cost, and the per-evaluation budget.

A config is written by people we do not fully trust with the worker's CPU and memory,
so every way an expression can grow work or data is bounded here, and reported as an
:class:`ExpressionLimitError` that names the limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import ClassVar

from flowbus.expr.errors import ExpressionLimitError

__all__ = ["DEFAULT_LIMITS", "Evaluator", "Limits", "State", "out_of_operations", "state_type", "too_many_items"]

# Each level of nesting takes a few Python frames in the parser: deeper parses would
# approach Python's own recursion limit (1,000 frames).
_MAX_DEPTH_CEILING = 100
# Python refuses to print an int longer than 4,300 digits (sys.int_info.default_max_str_digits).
_MAX_INT_DIGITS_CEILING = 4300


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """The bounds applied to compiling and evaluating one path or expression."""

    #: Characters in the source text.
    max_source_length: int = 2000
    #: Nesting depth of the parsed expression (brackets, operators, calls), and of the
    #: data that string() or == walk through.
    max_depth: int = 64
    #: Evaluation steps per evaluate(): one per node of the expression, plus one per
    #: item a function or operator walks (sum, join, in, ==, string() of a list...).
    max_operations: int = 10_000
    #: UTF-8 bytes of any string an expression produces.
    max_string_bytes: int = 1_048_576
    #: Items of any list an expression produces (and maps, by entries).
    max_list_items: int = 10_000
    #: Decimal digits of any integer an expression produces.
    max_int_digits: int = 4000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{field.name} must be a positive int, not {value!r}")
        if self.max_depth > _MAX_DEPTH_CEILING:
            raise ValueError(f"Limits.max_depth must be at most {_MAX_DEPTH_CEILING}")
        if self.max_int_digits > _MAX_INT_DIGITS_CEILING:
            raise ValueError(f"Limits.max_int_digits must be at most {_MAX_INT_DIGITS_CEILING}")


DEFAULT_LIMITS = Limits()


class State:
    """What one evaluation carries: its variables and its remaining budget.

    One small object per evaluate() call keeps the per-call overhead to an allocation.
    ``left`` starts at the budget minus the size of the expression (each node runs at
    most once: there are no loops) and work that grows with the data spends the rest.
    The limits are class attributes of the subclass that :func:`state_type` makes for
    them, so that an evaluation sets two fields, not four.
    """

    __slots__ = ("left", "variables")

    #: The limits of the evaluation.
    limits: ClassVar[Limits]
    #: Produced integers must lie strictly between -int_bound and int_bound.
    int_bound: ClassVar[int]

    #: (Set by Expression.evaluate, which builds a State without calling __init__.)
    variables: Mapping[str, object]
    left: int

    def charge(self, count: int) -> None:
        """Spend ``count`` operations, for work proportional to the size of a value."""
        self.left -= count
        if self.left < 0:
            raise out_of_operations(self.limits)

    def descend(self, depth: int, items: int) -> None:
        """Enter a list or map of ``items`` at ``depth`` (refused past max_depth), paying for its items."""
        if depth >= self.limits.max_depth:
            raise ExpressionLimitError(
                f"value is nested more than {self.limits.max_depth} levels deep (limit max_depth)"
            )
        self.charge(items)

    def check_int(self, value: int) -> int:
        """Return ``value`` if it has at most max_int_digits digits."""
        if -self.int_bound < value < self.int_bound:
            return value
        raise ExpressionLimitError(
            f"integer result has more than {self.limits.max_int_digits} digits (limit max_int_digits)"
        )

    def check_str(self, value: str) -> str:
        """Return ``value`` if it fits in max_string_bytes of UTF-8."""
        limit = self.limits.max_string_bytes
        # A character is at most 4 bytes: most strings pass without being encoded.
        if len(value) * 4 <= limit or (value.isascii() and len(value) <= limit):
            return value
        if len(value) > limit or utf8_length(value) > limit:
            raise self.string_too_long()
        return value

    def check_str_length(self, characters: int) -> None:
        """Refuse early a string that would be longer than max_string_bytes characters."""
        if characters > self.limits.max_string_bytes:
            raise self.string_too_long()

    def string_too_long(self) -> ExpressionLimitError:
        return ExpressionLimitError(
            f"string result is longer than {self.limits.max_string_bytes} bytes (limit max_string_bytes)"
        )

    def check_items(self, count: int) -> None:
        """Refuse a list or map of ``count`` items beyond max_list_items."""
        if count > self.limits.max_list_items:
            raise too_many_items(self.limits)


@functools.lru_cache(maxsize=32)
def state_type(limits: Limits) -> type[State]:
    """The State class of evaluations under ``limits`` (one per distinct Limits)."""

    class BoundState(State):
        __slots__ = ()

    BoundState.limits = limits
    BoundState.int_bound = 10**limits.max_int_digits
    return BoundState


def out_of_operations(limits: Limits) -> ExpressionLimitError:
    return ExpressionLimitError(f"expression needs more than {limits.max_operations} operations (limit max_operations)")


def too_many_items(limits: Limits) -> ExpressionLimitError:
    return ExpressionLimitError(f"list result has more than {limits.max_list_items} items (limit max_list_items)")


#: A compiled expression node: evaluates itself (and its children) in a State.
Evaluator = Callable[[State], object]


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8; a lone surrogate counts as the 3 bytes it would take."""
    return len(text.encode("utf-8", "surrogatepass"))
