"""JSON in and out without losing exactness: decimals stay decimals, times are ISO 8601."""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from flowbus.errors import FlowbusError

MAX_DEPTH = 64


class JsonError(FlowbusError):
    """Data is not valid JSON or cannot be written as JSON."""


#: the most digits of a JSON integer (Python's own guard against quadratic conversion)
MAX_INT_DIGITS = 4300
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class NotUnicode(JsonError):
    """JSON bytes are not UTF-8, or the text holds a lone surrogate (``"\\ud800"``): not
    characters, so no store could keep them."""


def loads(text: str | bytes) -> Any:
    """Parse JSON; numbers with a fraction or exponent become ``Decimal``, never float.

    Refused, each in flowbus's words: text nesting deeper than :data:`MAX_DEPTH`, integers of
    more than :data:`MAX_INT_DIGITS` digits, an object with a key twice (which value would win
    is a guess), and bytes that are not UTF-8 or a lone surrogate anywhere (:class:`NotUnicode`,
    naming where).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")  # JSON is UTF-8 (RFC 8259); no guessing at UTF-16
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start]
            raise NotUnicode(f"the JSON is not UTF-8: byte 0x{bad:02x} at offset {exc.start}") from None
        raw_surrogates = False  # strict UTF-8 has none
    else:
        raw_surrogates = _has_surrogate(text)
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_int=_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise JsonError(f"JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise JsonError(f"not valid JSON: {exc}") from None
    _check_depth(value)
    # otherwise a lone surrogate can only come from a \uD800-\uDFFF escape: walk the value only
    # then, so that ordinary text (escaped accents included) pays nothing
    if raw_surrogates or _SURROGATE_ESCAPE.search(text):
        where = lone_surrogate(value)
        if where is not None:
            raise NotUnicode(f"{where} holds a lone surrogate, which is not a character")
    return value


def lone_surrogate(value: Any, path: str = "$") -> str | None:
    """The JSONPath of the first key or string of ``value`` holding a lone surrogate, or None."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    return f"the key {key.encode('utf-8', 'backslashreplace').decode()!r} of {where}"
                stack.append((child, f"{where}.{key}" if key.isidentifier() else f"{where}[{key!r}]"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"a number of {len(digits):,} digits; the limit is {MAX_INT_DIGITS:,}")
    return int(digits)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return result


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
