"""Load a config: parse, validate fields, check references, compile values. All issues at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowbus.config.base import IDENTIFIER_PATTERN, NAME_PATTERN
from flowbus.config.document import Document, FieldPath, parse_file, parse_text
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


def load_config(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> LoadedConfig:
    """Load one config file; raises :class:`ConfigError` listing every error found."""
    return load_document(parse_file(path), limits=limits)


def load_config_text(text: str | bytes, *, file: str = "<config>", limits: Limits = DEFAULT_LIMITS) -> LoadedConfig:
    return load_document(parse_text(text, file=file), limits=limits)


def load_document(document: Document, *, limits: Limits = DEFAULT_LIMITS) -> LoadedConfig:
    try:
        config = Config.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError(_field_issues(document, exc)) from None
    issues = ReferenceChecker(config, document).check()
    errors = [i for i in issues if i.severity is Severity.ERROR]
    if errors:
        raise ConfigError(issues)
    try:
        plan = compile_plan(config, limits=limits)
    except StepCompileError as exc:
        raise ConfigError([*issues, Issue.error(document.location(exc.path), exc.message)]) from None
    return LoadedConfig(file=document.file, document=document, config=config, plan=plan, warnings=tuple(issues))


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
