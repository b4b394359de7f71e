"""Storage backends behind small protocols (:mod:`flowbus.stores.protocols`), one module each.

:func:`database` picks one from a database URL, for :func:`open_backend` and :func:`projects_in`:

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: one file (the default);
  ``?synchronous=full`` keeps every commit through a power loss too, at the price of an fsync
  per commit (the default, ``normal``, keeps them through a crash of the process);
- ``postgresql://user@host:5432/dbname``: many workers on many machines (``flowbus[postgres]``);
- ``memory://``: this process only, gone at exit.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

from flowbus.errors import FlowbusError
from flowbus.stores.protocols import Backend

DEFAULT_DB_URL = "sqlite:///.flowbus/flowbus.db"


class DatabaseUrlError(FlowbusError):
    """The database URL names no backend flowbus has."""


class Database(NamedTuple):
    """The database a URL names: how to open one project's backend there, and how to list the
    projects it holds (those with a published config)."""

    open: Callable[[str], Backend]
    projects: Callable[[], list[str]]


def database(url: str) -> Database:
    """The one place a URL chooses a backend; only the module of the backend in use is imported."""
    if url.startswith("sqlite:///"):
        from flowbus.stores import sqlite  # noqa: PLC0415

        path, _, query = url.removeprefix("sqlite:///").partition("?")
        if not path:
            raise DatabaseUrlError("a sqlite URL needs a file path: sqlite:///path/to/flowbus.db")
        synchronous = _sqlite_synchronous(query)
        return Database(
            lambda project: sqlite.SqliteBackend(path, project, synchronous=synchronous),
            lambda: sqlite.projects_in(path),
        )
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from flowbus.stores import postgres  # noqa: PLC0415
        except ImportError as exc:  # the extra is not installed
            raise DatabaseUrlError(
                f"PostgreSQL URLs need the postgres extra: pip install 'flowbus[postgres]' ({exc})"
            ) from None
        return Database(lambda project: postgres.PostgresBackend(url, project), lambda: postgres.projects_in(url))
    if url in ("memory://", "memory:"):
        from flowbus.stores.memory import MemoryBackend  # noqa: PLC0415

        return Database(MemoryBackend, list)  # gone at exit: a new one holds no project
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise DatabaseUrlError(
        f"no backend for {scheme!r} URLs; use sqlite:///path/to/flowbus.db (the default: {DEFAULT_DB_URL}), "
        "postgresql://user@host/db or memory://"
    )


def _sqlite_synchronous(query: str) -> str:
    """The ``synchronous`` setting a SQLite URL's query asks for: ``normal`` (the default) or ``full``."""
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise DatabaseUrlError(f"a sqlite URL takes only ?synchronous=normal|full; not {', '.join(unknown)}")
    [value] = options.get("synchronous", ["normal"])[-1:]
    if value.lower() not in ("normal", "full"):
        raise DatabaseUrlError(f"synchronous={value[:32]!r} in a sqlite URL: use normal (the default) or full")
    return value.upper()


def open_backend(url: str, project: str = "default") -> Backend:
    return database(url).open(project)


def projects_in(url: str) -> list[str]:
    """The projects of the database at ``url`` (none when it does not exist yet)."""
    return database(url).projects()
