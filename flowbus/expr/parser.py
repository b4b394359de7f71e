"""Parse tokens into a syntax tree: a Pratt parser for the CEL operator grammar.

Precedence, lowest first (as in CEL)::

    ? :              right-associative
    ||
    &&
    == != < <= > >= in
    + -
    * / %
    ! -              prefix
    . [] ()          member, index, call

Nesting is counted as it is parsed (each bracket, operand and call argument), and the
depth of every node is checked as it is built, so 10,000 '(' or '!' stop at
``Limits.max_depth`` with a limit error long before Python's recursion limit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, NoReturn

from flowbus.expr import nodes
from flowbus.expr.errors import ExpressionLimitError, ExpressionSyntaxError
from flowbus.expr.lexer import Token, describe_token, tokenize
from flowbus.expr.limits import Limits
from flowbus.expr.values import DECIMAL_CONTEXT

__all__ = ["parse"]

# Binding power of each infix operator: a higher one binds tighter.
_INFIX: Final = {
    "||": 1,
    "&&": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5, "%": 5,
}  # fmt: skip
_LITERALS: Final = {"true": True, "false": False, "null": None}
_LITERAL_TOKENS: Final = frozenset({"int", "decimal", "string"})
# Words from other languages met where an operator was expected.
_WORD_HINTS: Final = {"and": "use '&&'", "or": "use '||'", "not": "use '!'", "is": "use '=='"}


def parse(source: str, limits: Limits) -> nodes.Node:
    """The syntax tree of ``source`` (an expression without its leading '=')."""
    if len(source) > limits.max_source_length:
        raise ExpressionLimitError(
            f"expression is {len(source)} characters long, more than "
            f"{limits.max_source_length} (limit max_source_length)",
            source=source[: limits.max_source_length],
            column=None,
        )
    return _Parser(source, limits).parse()


class _Parser:
    def __init__(self, source: str, limits: Limits) -> None:
        self.source = source
        self.max_depth = limits.max_depth
        self.tokens = tokenize(source, limits.max_int_digits)
        self.position = 0
        self.token = self.tokens[0]
        #: The kind of the current token, read far more often than anything else.
        self.kind = self.token[0]
        self.nesting = 0

    # -- helpers ---------------------------------------------------------------------

    def advance(self) -> Token:
        # The parser never advances past "eof": no rule consumes it.
        token = self.token
        self.position += 1
        self.token = self.tokens[self.position]
        self.kind = self.token[0]
        return token

    def fail(self, token: Token, message: str | None = None, hint: str = "") -> NoReturn:
        if message is None:
            message = f"unexpected {describe_token(token)}"
        raise ExpressionSyntaxError(message, source=self.source, column=token[2] + 1, hint=hint)

    def expect(self, kind: str, opener: Token | None = None) -> Token:
        if self.kind != kind:
            hint = f"expected '{kind}'"
            if opener is not None:
                relation = "to go with" if opener[0] == "?" else "to close"
                hint += f" {relation} the '{opener[0]}' at column {opener[2] + 1}"
            self.fail(self.token, hint=hint)
        return self.advance()

    def too_deep(self, offset: int) -> NoReturn:
        raise ExpressionLimitError(
            f"expression is nested more than {self.max_depth} levels deep (limit max_depth)",
            source=self.source,
            column=offset + 1,
        )

    def measure(self, at: int, children: tuple[nodes.Node, ...]) -> tuple[int, int]:
        """The depth and size of a node over ``children``, its depth checked."""
        depth = 1
        size = 1
        for child in children:
            if child.depth >= depth:
                depth = child.depth + 1
            size += child.size
        if depth > self.max_depth:
            self.too_deep(at)
        return depth, size

    # -- grammar ---------------------------------------------------------------------

    def parse(self) -> nodes.Node:
        node = self.expression()
        if self.kind != "eof":
            hint = ""
            if self.kind not in _INFIX and self.kind not in ("?", ":"):
                hint = "an operator is missing before it"
            if self.kind == "ident":
                hint = _WORD_HINTS.get(str(self.token[1]), hint)
            self.fail(self.token, hint=hint)
        return node

    def expression(self) -> nodes.Node:
        """conditional: or ('?' expression ':' expression)?"""
        self.nesting += 1
        if self.nesting > self.max_depth:
            self.too_deep(self.token[2])
        condition = self.binary(0)
        if self.kind == "?":
            question = self.advance()
            then = self.expression()
            self.expect(":", question)
            otherwise = self.expression()
            depth, size = self.measure(question[2], (condition, then, otherwise))
            condition = nodes.Conditional(
                start=condition.start,
                end=otherwise.end,
                at=question[2],
                depth=depth,
                size=size,
                condition=condition,
                then=then,
                otherwise=otherwise,
            )
        self.nesting -= 1
        return condition

    def binary(self, min_power: int) -> nodes.Node:
        left = self.unary()
        while True:
            power = _INFIX.get(self.kind)
            if power is None or power <= min_power:
                return left
            operator, _, at, _ = self.advance()
            right = self.binary(power)
            depth = (left.depth if left.depth > right.depth else right.depth) + 1
            if depth > self.max_depth:
                self.too_deep(at)
            left = nodes.Binary(left.start, right.end, at, depth, left.size + right.size + 1, operator, left, right)

    def unary(self) -> nodes.Node:
        if self.kind not in ("!", "-"):
            return self.postfix()
        # Prefix operators are gathered in a loop, not by recursion, so a long run of
        # them costs no stack; the depth check on each node still bounds them.
        prefixes: list[Token] = []
        while self.kind in ("!", "-"):
            prefixes.append(self.advance())
        node = self.postfix()
        for operator, _, at, _ in reversed(prefixes):
            value = node.value if isinstance(node, nodes.Literal) else None
            if operator == "-" and (type(value) is int or isinstance(value, Decimal)):
                # Fold "-2" into a literal: a negative number, not an operation.
                negated = -value if isinstance(value, int) else DECIMAL_CONTEXT.minus(value)
                node = nodes.Literal(at, node.end, at, 1, 1, negated)
                continue
            depth, size = self.measure(at, (node,))
            node = nodes.Unary(start=at, end=node.end, at=at, depth=depth, size=size, operator=operator, operand=node)
        return node

    def postfix(self) -> nodes.Node:
        node = self.primary()
        while True:
            kind = self.kind
            if kind == ".":
                self.advance()
                name_kind, name, at, end = self.token
                if name_kind != "ident" and name_kind not in _LITERALS and name_kind != "in":
                    self.fail(self.token, hint="a field name must follow '.'")
                self.advance()
                if self.kind == "(":
                    args = (node, *self.arguments())
                    depth, size = self.measure(at, args)
                    end = self.tokens[self.position - 1][3]
                    node = nodes.Call(
                        start=node.start,
                        end=end,
                        at=at,
                        depth=depth,
                        size=size,
                        name=str(name),
                        args=args,
                        method=True,
                    )
                else:
                    depth = node.depth + 1
                    if depth > self.max_depth:
                        self.too_deep(at)
                    node = nodes.Field(node.start, end, at, depth, node.size + 1, node, str(name))
            elif kind == "[":
                bracket = self.advance()
                index = self.expression()
                close = self.expect("]", bracket)
                depth, size = self.measure(bracket[2], (node, index))
                node = nodes.Index(
                    start=node.start, end=close[3], at=bracket[2], depth=depth, size=size, operand=node, index=index
                )
            else:
                return node

    def arguments(self) -> tuple[nodes.Node, ...]:
        opener = self.expect("(")
        args: list[nodes.Node] = []
        while self.kind != ")":
            args.append(self.expression())
            if self.kind != ",":
                break
            self.advance()
        self.expect(")", opener)
        return tuple(args)

    def primary(self) -> nodes.Node:
        token = self.token
        kind, value, start, end = token
        if kind in _LITERAL_TOKENS:
            self.advance()
            return nodes.Literal(start, end, start, 1, 1, value)
        if kind in _LITERALS:
            self.advance()
            return nodes.Literal(start, end, start, 1, 1, _LITERALS[kind])
        if kind == "ident":
            self.advance()
            if self.kind == "(":
                return self.call(token)
            return nodes.Name(start, end, start, 1, 1, str(value))
        if kind == "(":
            self.advance()
            inner = self.expression()
            self.expect(")", token)
            return inner
        if kind == "[":
            return self.list_literal()
        if kind == "{":
            return self.map_literal()
        self.fail(token)

    def call(self, name: Token) -> nodes.Node:
        args = self.arguments()
        end = self.tokens[self.position - 1][3]
        at = name[2]
        if name[1] == "has":
            if len(args) != 1 or not isinstance(args[0], (nodes.Field, nodes.Index)):
                raise ExpressionSyntaxError(
                    "has() takes one field, like has(data.email) or has(data['e-mail'])",
                    source=self.source,
                    column=at + 1,
                )
            depth, size = self.measure(at, args)
            return nodes.Has(start=at, end=end, at=at, depth=depth, size=size, target=args[0])
        depth, size = self.measure(at, args)
        return nodes.Call(start=at, end=end, at=at, depth=depth, size=size, name=str(name[1]), args=args, method=False)

    def list_literal(self) -> nodes.Node:
        opener = self.advance()
        items: list[nodes.Node] = []
        while self.kind != "]":
            items.append(self.expression())
            if self.kind != ",":
                break
            self.advance()
        close = self.expect("]", opener)
        depth, size = self.measure(opener[2], tuple(items))
        return nodes.ListLiteral(
            start=opener[2], end=close[3], at=opener[2], depth=depth, size=size, items=tuple(items)
        )

    def map_literal(self) -> nodes.Node:
        opener = self.advance()
        entries: list[tuple[nodes.Node, nodes.Node]] = []
        while self.kind != "}":
            key = self.expression()
            self.expect(":")
            entries.append((key, self.expression()))
            if self.kind != ",":
                break
            self.advance()
        close = self.expect("}", opener)
        depth, size = self.measure(opener[2], tuple(n for entry in entries for n in entry))
        return nodes.MapLiteral(
            start=opener[2], end=close[3], at=opener[2], depth=depth, size=size, entries=tuple(entries)
        )
