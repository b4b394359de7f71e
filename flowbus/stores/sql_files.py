"""SQL kept in ``.sql`` files: named queries and numbered migrations, read with importlib.resources."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(dialect: str) -> dict[str, str]:
    """The queries of ``sql/<dialect>/queries.sql``, by the name in their ``-- name:`` line."""
    text = resources.files("flowbus.stores").joinpath("sql", dialect, "queries.sql").read_text()
    parts = _NAME.split(text)
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_schema(dialect: str) -> str:
    return resources.files("flowbus.stores").joinpath("sql", dialect, "schema.sql").read_text()


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` of every migration, in order."""
    folder = resources.files("flowbus.stores").joinpath("sql", dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found)
