"""JSON in and out without losing exactness: decimals stay decimals, times are ISO 8601."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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
    """JSON text; ``Decimal`` is written as an exact JSON number."""
    return "".join(_encode(value, indent, 0))


def _encode(value: Any, indent: int | None, level: int) -> Any:
    if level > MAX_DEPTH:
        raise JsonError(f"data nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str):
        yield json.dumps(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise JsonError(f"{value} is not a JSON number")
        yield str(value)
    elif isinstance(value, float):
        yield json.dumps(value)
    elif isinstance(value, dt.datetime | dt.date):
        yield json.dumps(value.isoformat())
    elif isinstance(value, dt.timedelta):
        yield json.dumps(f"{value.total_seconds()}s")
    elif isinstance(value, enum.Enum):
        yield from _encode(value.value, indent, level)
    elif isinstance(value, Mapping):
        yield from _container("{", "}", [(json.dumps(str(k)), v) for k, v in value.items()], indent, level)
    elif isinstance(value, list | tuple):
        yield from _container("[", "]", [(None, v) for v in value], indent, level)
    else:
        raise JsonError(f"cannot write a {type(value).__name__} as JSON")


def _container(open_: str, close: str, items: list[tuple[str | None, Any]], indent: int | None, level: int) -> Any:
    if not items:
        yield open_ + close
        return
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    outer = "" if indent is None else "\n" + " " * (indent * level)
    colon = ": " if indent is not None else ":"
    yield open_
    for position, (key, item) in enumerate(items):
        yield ("," if position else "") + inner
        if key is not None:
            yield key + colon
        yield from _encode(item, indent, level + 1)
    yield outer + close
