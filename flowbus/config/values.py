"""Config values compiled once: literals, ``$`` JSONPaths and ``=`` expressions (design §2).

A compiled :class:`Value` evaluates against a run's *scope*: the variables ``data``, ``event``,
``inputs``, ``steps``, ``vars`` (and ``item``, ``index`` inside ``foreach``). A ``$`` path reads
``data``: the message payload in a trigger flow, the inputs in a logic flow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from flowbus.errors import FlowbusError
from flowbus.events.frozen import freeze
from flowbus.expr import (
    DEFAULT_LIMITS,
    NOTHING,
    ExpressionError,
    Limits,
    compile_expression,
    compile_path,
)

Scope = Mapping[str, Any]

#: the variables an expression may name
SCOPE_VARIABLES = frozenset({"data", "event", "inputs", "steps", "vars", "item", "index"})


class PathNotFound(FlowbusError):
    """A JSONPath matched nothing in the run's data."""


def type_name(value: Any) -> str:
    """The name a user knows a value's type by: string, decimal, object, list..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_TYPE_NAMES = {
    int: "int",
    Decimal: "decimal",
    str: "string",
    dt.datetime: "timestamp",
    dt.date: "date",
    dt.timedelta: "duration",
}


class InvalidValue(FlowbusError):
    """A path or expression in a config value does not compile."""

    def __init__(self, path: tuple[str | int, ...], error: ExpressionError) -> None:
        self.path = path
        self.error = error
        super().__init__(str(error))


class Value(Protocol):
    """A compiled config value."""

    #: False when the value is the same for every run (a literal)
    dynamic: bool

    def evaluate(self, scope: Scope) -> Any: ...


class Constant:
    __slots__ = ("value",)
    dynamic = False

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, scope: Scope) -> Any:
        return self.value


class PathValue:
    __slots__ = ("_find_one", "path", "source")
    dynamic = True

    def __init__(self, source: str) -> None:
        self.source = source
        self.path = compile_path(source)
        self._find_one = self.path.find_one if self.path.singular else None

    def evaluate(self, scope: Scope) -> Any:
        data = scope["data"]
        if self._find_one is None:
            return self.path.find(data)
        found = self._find_one(data)
        if found is NOTHING:
            raise PathNotFound(f"{self.source} matched nothing in data")
        return found


class ExpressionValue:
    __slots__ = ("evaluate", "source")
    dynamic = True

    def __init__(self, source: str, limits: Limits) -> None:
        self.source = source
        self.evaluate = compile_expression(source[1:], limits=limits, variables=SCOPE_VARIABLES).evaluate


class MappingValue:
    __slots__ = ("items",)
    dynamic = True

    def __init__(self, items: tuple[tuple[str, Value], ...]) -> None:
        self.items = items

    def evaluate(self, scope: Scope) -> dict[str, Any]:
        return {key: value.evaluate(scope) for key, value in self.items}


class ListValue:
    __slots__ = ("items",)
    dynamic = True

    def __init__(self, items: tuple[Value, ...]) -> None:
        self.items = items

    def evaluate(self, scope: Scope) -> list[Any]:
        return [value.evaluate(scope) for value in self.items]


def compile_value(raw: Any, *, limits: Limits = DEFAULT_LIMITS) -> Value:
    """Compile a raw config value; raises :class:`InvalidValue` naming where it failed.

    Structures without any path or expression inside fold into one frozen :class:`Constant`.
    """
    return _compile(raw, limits, ())


def _compile(raw: Any, limits: Limits, path: tuple[str | int, ...]) -> Value:
    if isinstance(raw, str):
        try:
            if raw.startswith("$"):
                return PathValue(raw)
            if raw.startswith("="):
                return ExpressionValue(raw, limits)
        except ExpressionError as exc:
            raise InvalidValue(path, exc) from None
        return Constant(raw)
    if isinstance(raw, Mapping):
        pairs = tuple((str(k), _compile(v, limits, (*path, str(k)))) for k, v in raw.items())
        if any(v.dynamic for _, v in pairs):
            return MappingValue(pairs)
        return Constant(freeze({k: v.evaluate({}) for k, v in pairs}))
    if isinstance(raw, list | tuple):
        values = tuple(_compile(v, limits, (*path, i)) for i, v in enumerate(raw))
        if any(v.dynamic for v in values):
            return ListValue(values)
        return Constant(freeze([v.evaluate({}) for v in values]))
    return Constant(raw)
