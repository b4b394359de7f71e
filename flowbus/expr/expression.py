"""Compiled expressions: the ``=`` strings of a config.

>>> expression = compile_expression("data.total * 1.2")
>>> expression.evaluate({"data": {"total": 10}})
Decimal('12.0')
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from flowbus.expr.compiler import compile_tree
from flowbus.expr.errors import ExpressionLimitError
from flowbus.expr.limits import DEFAULT_LIMITS, Evaluator, Limits, out_of_operations, state_type
from flowbus.expr.parser import parse

__all__ = ["Expression", "compile_expression"]


class Expression:
    """An expression compiled once, evaluated many times (safely from many threads)."""

    __slots__ = ("evaluate", "source", "variables")

    def __init__(self, source: str, run: Evaluator, limits: Limits, variables: frozenset[str], size: int) -> None:
        #: The expression text, without the leading '=' of a config value.
        self.source = source
        #: The root variable names the expression reads (``data``, ``steps``...).
        self.variables = variables
        #: ``evaluate(variables: Mapping[str, object]) -> object``: the value of the
        #: expression for these variables. Raises ExpressionRuntimeError or
        #: ExpressionLimitError with the source and column of the failing part.
        self.evaluate: Callable[[Mapping[str, object]], object] = _evaluator(source, run, limits, size)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _evaluator(source: str, run: Evaluator, limits: Limits, size: int) -> Callable[[Mapping[str, object]], object]:
    # A closure rather than a method: evaluate() is the hot path of every run, and a
    # closure reads its constants from cells instead of attributes of self.
    state_class = state_type(limits)
    left = limits.max_operations - size  # every node of the expression paid for up front
    new = object.__new__

    def evaluate(variables: Mapping[str, object]) -> object:
        if type(variables) is not dict and not isinstance(variables, Mapping):
            raise TypeError(f"variables must be a mapping, not {type(variables).__name__}")
        state = new(state_class)
        state.variables = variables
        state.left = left
        try:
            return run(state)
        except RecursionError:
            # The parser bounds nesting well below the recursion limit; this guards a
            # caller that was itself already deep in its stack.
            raise ExpressionLimitError(
                "expression is nested too deeply for the current call stack", source=source
            ) from None

    return evaluate


def compile_expression(
    source: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    variables: Collection[str] | None = None,
) -> Expression:
    """Compile an expression (the text after the leading '=' of a config value).

    ``variables``, when given, are the only root names the expression may use: any
    other is an :class:`ExpressionSyntaxError` now rather than an error at run time.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    try:
        tree = parse(source, limits)
    except RecursionError:
        # max_depth stops nesting long before this; only a caller already deep in its
        # own stack can get here.
        raise ExpressionLimitError("expression is nested too deeply", source=source) from None
    known = frozenset(variables) if variables is not None else None
    if tree.size > limits.max_operations:
        # Each node runs at most once per evaluation; a tree this big could exceed the budget.
        raise out_of_operations(limits).locate(source, None)
    run, names = compile_tree(tree, source, limits, known)
    return Expression(source, run, limits, names, tree.size)
