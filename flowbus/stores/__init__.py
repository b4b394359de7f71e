"""Storage backends behind small protocols (:mod:`flowbus.stores.protocols`), one module each.

:func:`open_backend` picks one from a database URL:

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: one file (the default);
- ``postgresql://user@host:5432/dbname``: many workers on many machines (``flowbus[postgres]``);
- ``memory://``: this process only, gone at exit.
"""

from __future__ import annotations

from flowbus.errors import FlowbusError
from flowbus.stores.protocols import Backend

DEFAULT_DB_URL = "sqlite:///.flowbus/flowbus.db"


class DatabaseUrlError(FlowbusError):
    """The database URL names no backend flowbus has."""


def open_backend(url: str, project: str = "default") -> Backend:
    if url.startswith("sqlite:///"):
        from flowbus.stores.sqlite import SqliteBackend  # noqa: PLC0415 - only the backend in use is imported

        path = url.removeprefix("sqlite:///")
        if not path:
            raise DatabaseUrlError("a sqlite URL needs a file path: sqlite:///path/to/flowbus.db")
        return SqliteBackend(path, project)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from flowbus.stores.postgres import PostgresBackend  # noqa: PLC0415
        except ImportError as exc:  # the extra is not installed
            raise DatabaseUrlError(
                f"PostgreSQL URLs need the postgres extra: pip install 'flowbus[postgres]' ({exc})"
            ) from None
        return PostgresBackend(url, project)
    if url in ("memory://", "memory:"):
        from flowbus.stores.memory import MemoryBackend  # noqa: PLC0415

        return MemoryBackend(project)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise DatabaseUrlError(
        f"no backend for {scheme!r} URLs; use sqlite:///path/to/flowbus.db (the default: {DEFAULT_DB_URL}), "
        "postgresql://user@host/db or memory://"
    )
