"""JSONPath (RFC 9535): the ``$`` strings of a config.

Paths are compiled by python-jsonpath in strict RFC 9535 mode, once. A *singular*
path (only name and index segments: ``$.payload.company.domain``, ``$.items[0]``,
``$['a b'][-1]``) is also compiled to a tuple of keys walked with plain indexing,
which gives the engine's answers at a fraction of its cost; ``find`` and
``find_one`` use it whenever it applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from io import IOBase
from typing import Any, Final

import jsonpath
from jsonpath.selectors import IndexSelector, NameSelector

from flowbus.expr.errors import (
    ExpressionLimitError,
    ExpressionRuntimeError,
    ExpressionSyntaxError,
)
from flowbus.expr.limits import DEFAULT_LIMITS, Limits
from flowbus.expr.values import NOTHING

__all__ = ["JsonPath", "compile_path"]

_ENVIRONMENT: Final = jsonpath.JSONPathEnvironment(strict=True)


class JsonPath:
    """A compiled JSONPath query."""

    __slots__ = ("_engine", "_keys", "singular", "source")

    def __init__(self, source: str, engine: jsonpath.JSONPath, keys: tuple[str | int, ...] | None):
        #: The path text, including its leading '$'.
        self.source = source
        #: Whether the path selects at most one value (RFC 9535 singular query).
        self.singular = keys is not None
        self._engine = engine
        self._keys = keys

    def find(self, data: object) -> list[object]:
        """Every value the path selects, in RFC 9535 order (empty when none)."""
        keys = self._keys
        if keys is not None:
            value = _walk(data, keys)
            return [] if value is NOTHING else [value]
        if isinstance(data, str):
            # The engine would parse a string document as JSON text: a string is a
            # leaf, so only the bare root can select it.
            return [data] if not self._engine.segments else []
        if isinstance(data, IOBase):
            # ... and read a file object: paths never do I/O.
            raise ExpressionRuntimeError(
                f"cannot query a {type(data).__name__}: a path queries data, not files",
                source=self.source,
            )
        try:
            document: Any = data
            return [match.obj for match in self._engine.finditer(document)]
        except RecursionError:
            raise ExpressionLimitError("the data is nested too deeply for this path", source=self.source) from None
        except jsonpath.JSONPathError as error:
            raise ExpressionRuntimeError(str(error.args[0]), source=self.source) from None

    def find_one(self, data: object) -> object:
        """The single value a singular path selects (the first one for another path),
        or :data:`NOTHING` when the path selects nothing."""
        keys = self._keys
        if keys is not None:
            return _walk(data, keys)
        found = self.find(data)
        return found[0] if found else NOTHING

    def __repr__(self) -> str:
        return f"JsonPath({self.source!r})"


def compile_path(source: str, *, limits: Limits = DEFAULT_LIMITS) -> JsonPath:
    """Compile a JSONPath (the whole text, including the leading '$')."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    if len(source) > limits.max_source_length:
        raise ExpressionLimitError(
            f"path is {len(source)} characters long, more than {limits.max_source_length} (limit max_source_length)",
            source=source[: limits.max_source_length],
        )
    try:
        engine = _ENVIRONMENT.compile(source)
    except RecursionError:
        # JSONPathRecursionError is both a JSONPathError and a RecursionError.
        raise ExpressionLimitError("path is nested too deeply", source=source) from None
    except jsonpath.JSONPathError as error:
        raise _syntax_error(source, error) from None
    if not isinstance(engine, jsonpath.JSONPath):  # pragma: no cover - strict mode
        raise ExpressionSyntaxError("unions and intersections are not RFC 9535", source=source)
    return JsonPath(source, engine, _singular_keys(engine))


def _syntax_error(source: str, error: jsonpath.JSONPathError) -> ExpressionSyntaxError:
    message = str(error.args[0]) if error.args else "invalid path"
    token = error.token
    column: int | None = None
    if token is not None:
        # The engine marks the end of the text with index -1.
        column = token.index + 1 if token.index >= 0 else len(source) + 1
    if source[:1].isspace():
        message, column = "unexpected leading whitespace", 1
    elif not source.startswith("$"):
        message, column = "a path must start with '$'", 1
    return ExpressionSyntaxError(message, source=source, column=column)


def _singular_keys(engine: jsonpath.JSONPath) -> tuple[str | int, ...] | None:
    """The keys of a singular path, or None when the path may select several values."""
    if not engine.singular_query():
        return None
    keys: list[str | int] = []
    for segment in engine.segments:
        (selector,) = segment.selectors
        if isinstance(selector, NameSelector):
            keys.append(selector.name)
        elif isinstance(selector, IndexSelector):
            keys.append(selector.index)
        else:  # pragma: no cover - singular_query() admits only these two
            return None
    return tuple(keys)


def _walk(data: object, keys: tuple[str | int, ...]) -> object:
    # The same tests as the engine's NameSelector and IndexSelector: a name selects
    # from any Mapping, an index from any Sequence but a string. Exact dict and list
    # are tried first because they are the common case and cheaper than an ABC check.
    node: object = data
    for key in keys:
        kind = type(node)
        if type(key) is str:
            if kind is dict or (kind is not list and isinstance(node, Mapping)):
                try:
                    node = node[key]  # type: ignore[index]
                except KeyError:
                    return NOTHING
            else:
                return NOTHING
        elif kind is list or (isinstance(node, Sequence) and not isinstance(node, str)):
            try:
                node = node[key]  # type: ignore[index]
            except IndexError:
                return NOTHING
        else:
            return NOTHING
    return node
