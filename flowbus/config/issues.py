"""Config issues (errors and warnings), each pinned to ``FILE:LINE: field``."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flowbus.errors import FlowbusError


class Severity(enum.StrEnum):
    ERROR = "error"  #: the config cannot be used
    WARNING = "warning"  #: the config works, but probably not as intended


@dataclass(frozen=True, kw_only=True)
class Location:
    """Where in which file a config value sits."""

    file: str
    line: int
    path: tuple[str | int, ...] = ()

    @property
    def field(self) -> str:
        """The dotted field path, with list indexes in brackets: ``flows[0].steps[1].data``."""
        text = ""
        for part in self.path:
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                text += f".{part}" if text else part
        return text


@dataclass(frozen=True, kw_only=True)
class Issue:
    location: Location
    message: str
    severity: Severity = Severity.ERROR

    @classmethod
    def error(cls, location: Location, message: str) -> Issue:
        return cls(location=location, message=message)

    @classmethod
    def warning(cls, location: Location, message: str) -> Issue:
        return cls(location=location, message=message, severity=Severity.WARNING)

    def __str__(self) -> str:
        where = f"{self.location.file}:{self.location.line}"
        field = self.location.field
        prefix = f"{where}: {field}: " if field else f"{where}: "
        label = "warning: " if self.severity is Severity.WARNING else ""
        return f"{prefix}{label}{self.message}"


class ConfigError(FlowbusError):
    """The config is not valid."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: Sequence[Issue] = tuple(issues)
        errors = [i for i in self.issues if i.severity is Severity.ERROR]
        super().__init__("\n".join(str(i) for i in errors) or None)
