"""Paths and expressions: the ``$`` and ``=`` strings of a flowbus config.

- :func:`compile_path` compiles a JSONPath (RFC 9535), such as ``$.payload.company``.
- :func:`compile_expression` compiles an expression in a small, sandboxed language
  with CEL syntax, such as ``data.total * 1.2``.

Both compile once and evaluate many times; both raise :class:`ExpressionError`
subclasses that carry the source text and the column of the problem.
"""

from __future__ import annotations

from flowbus.expr.errors import (
    ExpressionError,
    ExpressionLimitError,
    ExpressionRuntimeError,
    ExpressionSyntaxError,
)
from flowbus.expr.expression import Expression, compile_expression
from flowbus.expr.limits import DEFAULT_LIMITS, Limits
from flowbus.expr.paths import JsonPath, compile_path
from flowbus.expr.values import NOTHING

__all__ = [
    "DEFAULT_LIMITS",
    "NOTHING",
    "Expression",
    "ExpressionError",
    "ExpressionLimitError",
    "ExpressionRuntimeError",
    "ExpressionSyntaxError",
    "JsonPath",
    "Limits",
    "compile_expression",
    "compile_path",
]
