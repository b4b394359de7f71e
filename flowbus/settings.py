"""One settings object: every CLI option and environment variable is derived from it."""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

from flowbus.logs import LOG_LEVELS
from flowbus.stores import DEFAULT_DB_URL


def _setting(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True, kw_only=True)
class Settings:
    db: str = _setting(
        DEFAULT_DB_URL, "Database URL: sqlite:///path/to/file.db, postgresql://user@host/db or memory://."
    )
    project: str = _setting("", "Project to work on (default: the only project in the database).")
    batch_size: int = _setting(64, "Messages a worker claims and commits at a time.")
    lease_s: float = _setting(30.0, "Seconds a claimed message stays leased without a heartbeat.")
    log_format: str = _setting("text", "Log format: text, or json (one object per line).")
    log_level: str = _setting("info", "Least level logged (info: a line per finished run).", LOG_LEVELS)

    @staticmethod
    def env_var(name: str) -> str:
        return f"FLOWBUS_{name.upper()}"

    @classmethod
    def field(cls, name: str) -> Field[Any]:
        return next(f for f in fields(cls) if f.name == name)
