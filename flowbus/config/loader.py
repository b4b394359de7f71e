"""Load a config: parse, validate fields, check references, compile values. All issues at once."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowbus.config.base import IDENTIFIER_PATTERN, NAME_PATTERN
from flowbus.config.document import Document, FieldPath, parse_text, read_file
from flowbus.config.issues import ConfigError, Issue, Severity
from flowbus.config.model import URL_PATTERN, Config
from flowbus.config.plan import Plan, StepCompileError, compile_plan
from flowbus.config.references import ReferenceChecker
from flowbus.expr import DEFAULT_LIMITS, Limits


@dataclass(frozen=True, kw_only=True)
class LoadedConfig:
    """A config that passed every check, compiled and ready to run."""

    file: str
    document: Document
    config: Config
    plan: Plan
    warnings: Sequence[Issue] = ()


#: configs compiled in this process, by their text's digest, file name and limits: the same text
#: is compiled once whoever asks (the CLI and the publisher, a worker switching, each API project)
_COMPILED: OrderedDict[tuple[bytes, str, Limits], LoadedConfig] = OrderedDict()
_COMPILED_KEPT = 16


def load_config(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> LoadedConfig:
    """Load one config file; raises :class:`ConfigError` listing every error found."""
    return load_config_text(read_file(path), file=str(path), limits=limits)


def load_config_text(
    text: str | bytes, *, file: str = "<config>", limits: Limits = DEFAULT_LIMITS, keep: bool = True
) -> LoadedConfig:
    """Load config text already in memory (``file`` names it in messages); a text loaded before
    in this process is not compiled again: the loaded config is shared, so never change one.
    ``keep=False``: a text checked once (a draft) is neither looked up nor kept."""
    if not keep:
        return load_document(parse_text(text, file=file), limits=limits)
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    key = (hashlib.sha256(raw).digest(), file, limits)
    loaded = _COMPILED.get(key)
    if loaded is not None:
        _COMPILED.move_to_end(key)
        return loaded
    loaded = _COMPILED[key] = load_document(parse_text(text, file=file), limits=limits)
    if len(_COMPILED) > _COMPILED_KEPT:
        _COMPILED.popitem(last=False)
    return loaded


def parse_config(text: str | bytes, *, file: str) -> Config:
    """The structure of config text known to be valid (a stored version, for a diff): parsed into
    the models, neither checked nor compiled again."""
    return _models(parse_text(text, file=file))


def load_document(document: Document, *, limits: Limits = DEFAULT_LIMITS) -> LoadedConfig:
    config = _models(document)
    issues = ReferenceChecker(config, document).check()
    errors = [i for i in issues if i.severity is Severity.ERROR]
    if errors:
        raise ConfigError(issues)
    try:
        plan = compile_plan(config, limits=limits)
    except StepCompileError as exc:
        raise ConfigError([*issues, Issue.error(document.location(exc.path), exc.message)]) from None
    return LoadedConfig(file=document.file, document=document, config=config, plan=plan, warnings=tuple(issues))


def _models(document: Document) -> Config:
    try:
        return Config.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError(_field_issues(document, exc)) from None


def _field_issues(document: Document, exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors(include_url=False):
        path = _data_path(document.data, error["loc"], missing=error["type"] == "missing")
        issues.append(Issue.error(document.location(path), _message(error, path)))
    return issues


def _data_path(data: Any, loc: tuple[Any, ...], *, missing: bool) -> FieldPath:
    """The path into the data of a pydantic error location, without union tags and such."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            current = current[part]
            path.append(part)
        elif missing and isinstance(part, str) and part is loc[-1]:
            path.append(part)  # a missing field: name it
    return tuple(path)


_PATTERNS = {
    IDENTIFIER_PATTERN: "a valid identifier (letters, digits and _, starting with a letter or _)",
    NAME_PATTERN: "a valid name (letters, digits, _, . and -, starting with a letter or _)",
    URL_PATTERN: "an http:// or https:// URL",
}


def _message(error: Any, path: FieldPath) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field {path[-1]!r}" if path else "unknown field"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind == "literal_error":
        return f"{error['msg'].replace('Input should be', 'must be')}, got {error['input']!r}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        what = _PATTERNS.get(pattern, f"text matching {pattern}")
        return f"{error['input']!r} is not {what}"
    return str(error["msg"])
