"""JSON in and out without losing exactness: decimals stay decimals, times are ISO 8601."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from flowbus.errors import FlowbusError

MAX_DEPTH = 64


class JsonError(FlowbusError):
    """Data is not valid JSON or cannot be written as JSON."""


def loads(text: str | bytes) -> Any:
    """Parse JSON; numbers with a fraction or exponent become ``Decimal``, never float."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise JsonError(f"not valid JSON: {exc}") from None
    _check_depth(value)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_depth(value: Any) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JsonError(f"JSON nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text; ``Decimal`` is written as an exact JSON number.

    Any depth is written: the limit of :func:`loads` guards against untrusted input, while what
    flowbus writes is its own (the trace of a long event chain nests hundreds of levels deep).
    An explicit stack, not recursion, walks it, so no depth can exhaust Python's stack.
    """
    parts: list[str] = []
    stack: list[_Open] = []
    _write(value, parts, stack, indent)
    while stack:
        current = stack[-1]
        item = next(current.items, None)
        if item is None:
            stack.pop()
            parts.append(_newline(indent, current.level) + current.close)
            continue
        position, (key, child) = item
        parts.append(("," if position else "") + _newline(indent, current.level + 1))
        if key is not None:
            parts.append(key + (": " if indent is not None else ":"))
        _write(child, parts, stack, indent, current.level + 1)
    return "".join(parts)


class _Open(NamedTuple):
    """A container being written: its remaining items, its closing bracket and its level."""

    items: Iterator[tuple[int, tuple[str | None, Any]]]
    close: str
    level: int


def _newline(indent: int | None, level: int) -> str:
    return "" if indent is None else "\n" + " " * (indent * level)


def _write(value: Any, parts: list[str], stack: list[_Open], indent: int | None, level: int = 0) -> None:
    """Write a scalar to ``parts``, or open a container: its items are pushed on ``stack``."""
    if isinstance(value, enum.Enum) and not isinstance(value, bool | int | str):
        value = value.value
    if value is None or isinstance(value, bool | int | str):
        parts.append(json.dumps(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise JsonError(f"{value} is not a JSON number")
        parts.append(str(value))
    elif isinstance(value, float):
        parts.append(json.dumps(value))
    elif isinstance(value, dt.datetime | dt.date):
        parts.append(json.dumps(value.isoformat()))
    elif isinstance(value, dt.timedelta):
        parts.append(json.dumps(f"{value.total_seconds()}s"))
    elif isinstance(value, Mapping):
        _open("{", "}", [(json.dumps(str(k)), v) for k, v in value.items()], parts, stack, level)
    elif isinstance(value, list | tuple):
        _open("[", "]", [(None, v) for v in value], parts, stack, level)
    else:
        raise JsonError(f"cannot write a {type(value).__name__} as JSON")


def _open(
    open_: str, close: str, items: list[tuple[str | None, Any]], parts: list[str], stack: list[_Open], level: int
) -> None:
    if not items:
        parts.append(open_ + close)
        return
    parts.append(open_)
    stack.append(_Open(enumerate(items), close, level))
