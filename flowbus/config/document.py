"""Parse a YAML or JSON config file into plain data plus a map of where each value sits.

The map (field path -> line) is what lets every later error say ``FILE:LINE: field: message``.
Parsing is bounded: the file size, the nesting depth and the number of nodes after YAML alias
expansion are limited, so an untrusted file cannot exhaust memory ("billion laughs").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from flowbus.config.issues import ConfigError, Issue, Location
from flowbus.jsonio import MAX_INT_DIGITS

try:  # the C composer is several times faster; both give the same nodes and marks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - only on PyYAML builds without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class Document:
    """A parsed config file: its data and the line of every field in it."""

    file: str
    data: Any
    lines: Mapping[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int:
        """The line of ``path``, or of its nearest ancestor that has one (1 for the root)."""
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return self.lines.get((), 1)

    def location(self, path: FieldPath) -> Location:
        return Location(file=self.file, line=self.line_of(path), path=path)


def parse_file(path: str | Path) -> Document:
    """Read and parse one config file: JSON when its name ends in ``.json``, YAML otherwise."""
    return parse_text(read_file(path), file=str(path))


def read_file(path: str | Path) -> bytes:
    """A config file's bytes; a file that cannot be read is a :class:`ConfigError` naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        issue = Issue.error(Location(file=str(path), line=0), f"cannot read file: {exc.strerror}")
        raise ConfigError([issue]) from None


def parse_text(raw: bytes | str, *, file: str = "<config>") -> Document:
    """Parse config text already in memory (``file`` names it in messages)."""
    size = len(raw)
    if size > MAX_FILE_BYTES:
        raise _fail(file, 1, f"file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1 if isinstance(raw, bytes) else 1
        raise _fail(file, line, f"not UTF-8 text: byte {exc.start} cannot be decoded") from None
    if file.lower().endswith(".json"):
        return _parse_json(text, file)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise _fail(file, line, f"not valid YAML/JSON: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise _fail(file, 1, f"not valid YAML/JSON: {exc}") from None
    if node is None:
        raise _fail(file, 1, "the file is empty")
    builder = _Builder(file)
    data = builder.build(node, (), 0)
    return Document(file=file, data=data, lines=builder.lines)


def _parse_json(text: str, file: str) -> Document:
    """JSON by the JSON grammar (YAML differs on escapes such as ``\\/``); lines from YAML when it agrees."""
    try:
        data = json.loads(
            text, parse_float=Decimal, parse_int=_int, parse_constant=_no_constant, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as exc:
        raise _fail(file, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _fail(file, 1, f"the config nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _fail(file, 1, f"not valid JSON: {exc}") from None
    builder = _Builder(file)
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None:
            builder.build(node, (), 0)
    except (yaml.YAMLError, ConfigError):
        builder.lines.clear()  # the data is right; only the lines are lost: every error points at line 1
    _check_depth(data, file)
    return Document(file=file, data=data, lines=builder.lines)


def _int(digits: str) -> int:
    # Python refuses longer ones in its own words (sys.set_int_max_str_digits): say it in ours first
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(_too_long(digits))
    return int(digits)


def _too_long(digits: str) -> str:
    return f"a number of {len(digits.lstrip('+-')):,} digits; the limit is {MAX_INT_DIGITS:,}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _check_depth(data: Any, file: str) -> None:
    stack = [(data, 0)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise _fail(file, 1, f"the config nests deeper than {MAX_DEPTH} levels")
        if count > MAX_NODES:
            raise _fail(file, 1, f"the config has more than {MAX_NODES:,} values")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _fail(file: str, line: int, message: str) -> ConfigError:
    return ConfigError([Issue.error(Location(file=file, line=line), message)])


class _Builder:
    """Turn a composed YAML node tree into Python data, recording each node's line.

    Numbers that are not integers become ``Decimal`` (never float) so that money in a config
    stays exact. Mapping keys must be strings and unique.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[FieldPath, int] = {}
        self.nodes = 0
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _fail(
                self.file,
                node.start_mark.line + 1,
                f"the config has more than {MAX_NODES:,} values (after expanding aliases)",
            )
        if depth > MAX_DEPTH:
            raise _fail(
                self.file,
                node.start_mark.line + 1,
                f"the config nests deeper than {MAX_DEPTH} levels",
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _STANDARD_TAGS:
            raise _fail(self.file, node.start_mark.line + 1, f"the YAML tag {node.tag!r} is not supported")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _fail(
                    self.file,
                    key_node.start_mark.line + 1,
                    "YAML merge keys ('<<') are not supported; repeat the fields",
                )
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise _fail(
                    self.file,
                    key_node.start_mark.line + 1,
                    f"mapping keys must be strings, got {key!r}",
                )
            if key in result:
                raise _fail(self.file, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == "tag:yaml.org,2002:float":
            return _decimal(str(node.value))
        if (
            node.tag == "tag:yaml.org,2002:str"
            and not getattr(node, "style", None)
            and _EXPONENT_NUMBER.fullmatch(node.value)
        ):
            # YAML 1.1 wants a dot and a signed exponent; 1e3 is a number in JSON and YAML 1.2
            return _decimal(str(node.value))
        if node.tag == "tag:yaml.org,2002:int" and len(str(node.value).lstrip("+-")) > MAX_INT_DIGITS:
            raise _fail(self.file, node.start_mark.line + 1, _too_long(str(node.value)))
        if node.tag == "tag:yaml.org,2002:bool" and str(node.value).lower() not in ("true", "false"):
            # YAML 1.1 reads on/off/yes/no as booleans; a flow named `on` or a country code `NO`
            # should stay a string, as in YAML 1.2
            return str(node.value)
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a !!python/object tag: never constructed
            problem = getattr(exc, "problem", None) or str(exc)
            raise _fail(self.file, node.start_mark.line + 1, f"not valid here: {problem}") from None


_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")
)
_EXPONENT_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?[eE][+-]?[0-9]+")


def _decimal(text: str) -> Decimal | str:
    cleaned = text.replace("_", "")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return text  # .inf / .nan: not a number flowbus accepts; validation reports the field
    return number if number.is_finite() else text
