"""Compile a syntax tree into nested Python closures, once, at config publish time.

Each node becomes one closure taking the evaluation :class:`State`; a literal operand
is captured as a constant instead, and a run of field reads from a variable becomes one
chain (see :mod:`flowbus.expr.access`). A closure evaluates its children, then does
its own work inside a ``try`` that only adds its location to an error that has none
(a try costs nothing in Python 3.11 until something is raised).

The operation budget is settled here too: an expression has no loops, so each node is
evaluated at most once per evaluation and the tree's size bounds its node count. That
size is charged up front (and refused at compile time if it alone exceeds the budget);
what remains pays for the work that grows with the data, such as ``sum`` over a list.

Nothing here ever looks up an attribute on a value, or turns text into code.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from flowbus.expr import access, nodes, shapes
from flowbus.expr.errors import ExpressionError, ExpressionRuntimeError, ExpressionSyntaxError
from flowbus.expr.functions import FUNCTIONS, Function, suggest
from flowbus.expr.limits import Evaluator, Limits, State, too_many_items
from flowbus.expr.operators import BINARY, negate, not_
from flowbus.expr.values import DECIMAL_CONTEXT, MISSING, describe, kind

__all__ = ["compile_tree"]

# Decimal arithmetic a literal operand can take straight to the context.
_DECIMAL_OPERATIONS: Final[dict[str, Callable[[Any, Any], Decimal]]] = {
    "+": DECIMAL_CONTEXT.add,
    "-": DECIMAL_CONTEXT.subtract,
    "*": DECIMAL_CONTEXT.multiply,
}
_LITERAL_HINTS: Final = {
    "True": "true", "False": "false", "None": "null", "nil": "null", "NULL": "null",
    "TRUE": "true", "FALSE": "false", "undefined": "null",
}  # fmt: skip


def compile_tree(
    tree: nodes.Node, source: str, limits: Limits, known: frozenset[str] | None
) -> tuple[Evaluator, frozenset[str]]:
    """The evaluator of ``tree``, and the variable names it reads."""
    compiler = _Compiler(source, limits, known)
    return compiler.compile(tree), frozenset(compiler.names)


class _Compiler:
    def __init__(self, source: str, limits: Limits, known: frozenset[str] | None) -> None:
        self.source = source
        self.limits = limits
        self.known = known
        self.names: set[str] = set()

    def compile(self, node: nodes.Node) -> Evaluator:
        handler: Callable[[_Compiler, Any], Evaluator] = _HANDLERS[type(node)]
        return handler(self, node)

    def text(self, node: nodes.Node) -> str:
        return self.source[node.start : node.end]

    # -- leaves ----------------------------------------------------------------------

    def literal(self, node: nodes.Literal) -> Evaluator:
        value = node.value

        def literal(state: State) -> object:
            return value

        return literal

    def name(self, node: nodes.Name, lenient: bool = False) -> Evaluator:
        self.check_known(node)
        return access.chain(node.name, node.at + 1, (), self.source, lenient)

    def check_known(self, node: nodes.Name) -> None:
        self.names.add(node.name)
        if self.known is None or node.name in self.known:
            return
        close = difflib.get_close_matches(node.name, sorted(self.known), n=3)
        if node.name in _LITERAL_HINTS:
            close = [_LITERAL_HINTS[node.name]]
        hint = f"did you mean: {', '.join(close)}? " if close else ""
        hint += "the variables are: " + (", ".join(sorted(self.known)) or "(none)")
        raise ExpressionSyntaxError(
            f"unknown variable '{node.name}'", source=self.source, column=node.at + 1, hint=hint
        )

    # -- field and index -------------------------------------------------------------

    def access(self, node: nodes.Field | nodes.Index, lenient: bool = False) -> Evaluator:
        steps: list[access.Step] = []
        link: nodes.Node = node
        # Walk down a run of fields and literal indexes to a variable, if there is one.
        while True:
            if isinstance(link, nodes.Field):
                steps.append((link.name, True, self.text(link.operand), link.at + 1))
            elif (
                isinstance(link, nodes.Index)
                and isinstance(link.index, nodes.Literal)
                and type(link.index.value) in (str, int)
            ):
                steps.append((link.index.value, False, self.text(link.operand), link.at + 1))
            else:
                break
            link = link.operand
        if isinstance(link, nodes.Name):
            self.check_known(link)
            return access.chain(link.name, link.at + 1, tuple(reversed(steps)), self.source, lenient)
        operand = self.lenient(node.operand) if lenient else self.compile(node.operand)
        where, column = self.text(node.operand), node.at + 1
        if isinstance(node, nodes.Field):
            return access.field(operand, node.name, where, self.source, column, lenient)
        return access.item(operand, self.compile(node.index), where, self.source, column, lenient)

    def lenient(self, node: nodes.Node) -> Evaluator:
        """Compile ``node`` so that a missing link of a field chain yields MISSING."""
        if isinstance(node, (nodes.Field, nodes.Index)):
            return self.access(node, lenient=True)
        if isinstance(node, nodes.Name):
            return self.name(node, lenient=True)
        return self.compile(node)

    def has(self, node: nodes.Has) -> Evaluator:
        probe = self.lenient(node.target)

        def has(state: State) -> bool:
            return probe(state) is not MISSING

        return has

    # -- calls -----------------------------------------------------------------------

    def call(self, node: nodes.Call) -> Evaluator:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise ExpressionSyntaxError(
                f"unknown function '{node.name}'", source=self.source, column=node.at + 1, hint=suggest(node.name)
            )
        self.check_arity(function, node)
        impl = function.impl
        source, column = self.source, node.at + 1
        if function.lazy:
            thunks = tuple(self.lenient(arg) for arg in node.args)

            def lazy_call(state: State) -> object:
                # Each thunk locates its own errors; a lazy function raises none itself.
                value = impl(state, *thunks)
                return None if value is MISSING else value

            return lazy_call
        args = tuple(self.compile(arg) for arg in node.args)
        if len(args) == 1:
            (only,) = args

            def call_one(state: State) -> object:
                try:
                    return impl(state, only(state))
                except ExpressionError as error:
                    raise error.locate(source, column) from None

            return call_one

        def call(state: State) -> object:
            try:
                return impl(state, *[arg(state) for arg in args])
            except ExpressionError as error:
                raise error.locate(source, column) from None

        return call

    def check_arity(self, function: Function, node: nodes.Call) -> None:
        count = len(node.args)
        low, high = function.min_args, function.max_args
        if low <= count and (high is None or count <= high):
            return
        if high is None:
            expected = f"at least {low} argument{'s' if low != 1 else ''}"
        elif low == high:
            expected = f"{low} argument{'s' if low != 1 else ''}"
        else:
            expected = f"{low} to {high} arguments"
        got = f"got {count}"
        if node.method:
            got += f" counting the value before '.{node.name}'"
        raise ExpressionSyntaxError(f"{node.name}() takes {expected}, {got}", source=self.source, column=node.at + 1)

    # -- operators -------------------------------------------------------------------

    def unary(self, node: nodes.Unary) -> Evaluator:
        operand = self.compile(node.operand)
        operation = not_ if node.operator == "!" else negate
        source, column = self.source, node.at + 1

        def unary(state: State) -> object:
            try:
                return operation(operand(state), state)
            except ExpressionError as error:
                raise error.locate(source, column) from None

        return unary

    def binary(self, node: nodes.Binary) -> Evaluator:
        if node.operator in ("&&", "||"):
            return self.logical(node)
        if node.operator == "+" and isinstance(node.left, nodes.Binary) and node.left.operator == "+":
            return self.sum_chain(node)
        left = self.compile(node.left)
        right = self.compile(node.right)
        source, column = self.source, node.at + 1
        if node.operator in ("==", "!="):
            return shapes.equality(left, right, node.operator == "!=", source, column)
        operation = BINARY[node.operator]
        if isinstance(node.right, nodes.Literal) and not isinstance(node.left, nodes.Literal):
            constant = node.right.value
            decimal_operation = _DECIMAL_OPERATIONS.get(node.operator)
            if decimal_operation is not None and type(constant) in (int, Decimal):
                return shapes.arithmetic_constant(left, constant, operation, decimal_operation, source, column)

            def binary_constant(state: State) -> object:
                try:
                    return operation(left(state), constant, state)
                except ExpressionError as error:
                    raise error.locate(source, column) from None

            return binary_constant

        def binary(state: State) -> object:
            try:
                return operation(left(state), right(state), state)
            except ExpressionError as error:
                raise error.locate(source, column) from None

        return binary

    def sum_chain(self, node: nodes.Binary) -> Evaluator:
        """``a + b + c + ...``: see :func:`flowbus.expr.shapes.sum_chain`."""
        operands: list[shapes.Operand] = []
        link: nodes.Node = node
        while isinstance(link, nodes.Binary) and link.operator == "+":
            right = link.right
            if isinstance(right, nodes.Literal):
                operands.append((None, right.value, link.at + 1))
            else:
                operands.append((self.compile(right), None, link.at + 1))
            link = link.left
        return shapes.sum_chain(self.compile(link), tuple(reversed(operands)), self.source)

    def logical(self, node: nodes.Binary) -> Evaluator:
        left = self.compile(node.left)
        right = self.compile(node.right)
        # && stops at false, || at true.
        stop = node.operator == "||"
        symbol = node.operator
        source, column = self.source, node.at + 1

        def logical(state: State) -> object:
            a = left(state)
            if a is stop:
                return stop
            if a is not (not stop):
                raise _not_bool(symbol, "left", a).locate(source, column)
            b = right(state)
            if b is True or b is False:
                return b
            raise _not_bool(symbol, "right", b).locate(source, column)

        return logical

    def conditional(self, node: nodes.Conditional) -> Evaluator:
        condition = self.compile(node.condition)
        then = self.compile(node.then)
        otherwise = self.compile(node.otherwise)
        source, column = self.source, node.at + 1

        def conditional(state: State) -> object:
            test = condition(state)
            if test is True:
                return then(state)
            if test is False:
                return otherwise(state)
            raise ExpressionRuntimeError(f"the condition before '?' must be a bool, not {kind(test)}").locate(
                source, column
            )

        return conditional

    # -- literals of lists and maps --------------------------------------------------

    def list_literal(self, node: nodes.ListLiteral) -> Evaluator:
        items = tuple(self.compile(item) for item in node.items)
        if len(items) > self.limits.max_list_items:
            raise too_many_items(self.limits).locate(self.source, node.at + 1)

        def make_list(state: State) -> object:
            return [item(state) for item in items]

        return make_list

    def map_literal(self, node: nodes.MapLiteral) -> Evaluator:
        entries = tuple((self.compile(key), self.compile(value)) for key, value in node.entries)
        source, column = self.source, node.at + 1
        if len(entries) > self.limits.max_list_items:
            raise too_many_items(self.limits).locate(source, column)

        def make_map(state: State) -> object:
            result: dict[object, object] = {}
            for key_of, value_of in entries:
                key = key_of(state)
                value = value_of(state)
                try:
                    key = access.check_key(key)
                    if key in result:
                        shown = describe(key) if isinstance(key, str) else str(key)
                        raise ExpressionRuntimeError(f"the key {shown} appears twice in this map")
                except ExpressionError as error:
                    raise error.locate(source, column) from None
                result[key] = value
            return result

        return make_map


def _not_bool(symbol: str, side: str, value: object) -> ExpressionRuntimeError:
    return ExpressionRuntimeError(f"'{symbol}' needs bool operands; the {side} one is {kind(value)}")


_HANDLERS: Final[dict[type, Callable[[_Compiler, Any], Evaluator]]] = {
    nodes.Literal: _Compiler.literal,
    nodes.Name: _Compiler.name,
    nodes.Field: _Compiler.access,
    nodes.Index: _Compiler.access,
    nodes.Has: _Compiler.has,
    nodes.Call: _Compiler.call,
    nodes.Unary: _Compiler.unary,
    nodes.Binary: _Compiler.binary,
    nodes.Conditional: _Compiler.conditional,
    nodes.ListLiteral: _Compiler.list_literal,
    nodes.MapLiteral: _Compiler.map_literal,
}
