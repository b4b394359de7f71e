"""The SQLite backend: the embedded default, one file, zero setup.

One connection, in WAL mode, used from the thread of the event loop that opened it. A sqlite3
call takes microseconds; a hop to a database thread costs more than that, so calls are made
directly and a unit of work is one transaction. Several processes may share the file (WAL
allows readers beside the one writer; writers queue on the lock with a busy timeout).

This module connects, migrates, opens transactions, runs the named queries of
``sql/sqlite/queries.sql``, claims and translates errors (callers see :class:`StoreError` or
:class:`Conflict`); the store operations themselves are :mod:`flowbus.stores.sql_backend`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from flowbus.codec import encode
from flowbus.errors import StoreError, StoreUnavailable
from flowbus.queue import DEFAULT_DEDUP_WINDOW_S
from flowbus.stores import rows
from flowbus.stores.sql_backend import Params, SqlBackend
from flowbus.stores.sql_files import load_migrations, load_queries

Q = load_queries("sqlite")


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """sqlite3 errors become flowbus errors at this boundary."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if any(sign in str(exc) for sign in _AWAY):
            raise StoreUnavailable(f"SQLite: {exc}") from exc
        raise StoreError(f"SQLite: {exc}") from exc
    except (sqlite3.Error, OverflowError) as exc:  # the driver's OverflowError: an integer SQLite cannot hold
        raise StoreError(f"SQLite: {exc}") from exc


#: what SQLite says when the file, not the statement, is the trouble: it may pass
_AWAY = ("database is locked", "database table is locked", "disk I/O error", "unable to open database file")


def connect(path: str | Path, *, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open (creating if needed) and migrate a database file.

    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction through a process
    crash (SIGKILL); ``FULL`` also through a power loss, at the cost of an fsync per commit.
    """
    with translated_errors():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA busy_timeout = 30000")
        migrate(conn)
        return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, taken at once (BEGIN IMMEDIATE), committed or rolled back whole."""
    with translated_errors():
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations not applied yet, all in one transaction; returns their numbers."""
    with transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT number FROM schema_migrations")}
        applied = []
        for number, name, sql in load_migrations("sqlite"):
            if number in done:
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (number, name, applied_at) VALUES (?, ?, ?)",
                (number, name, rows.iso(_now())),
            )
            applied.append(number)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a script into statements (``sqlite3.complete_statement`` knows about triggers)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def projects_in(path: str | Path) -> list[str]:
    """The projects with a published config in a database file (none when it does not exist)."""
    if not Path(path).exists():
        return []
    with translated_errors(), contextlib.closing(sqlite3.connect(str(path))) as conn:
        try:
            found = conn.execute(Q["projects"]).fetchall()
        except sqlite3.OperationalError:  # not migrated yet: no projects
            return []
        return [row[0] for row in found]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SqliteConnector:
    """The SQL backend's way into one SQLite connection (see :mod:`flowbus.stores.sql_backend`).

    Its coroutines never suspend: a transaction runs from BEGIN to COMMIT without another task
    of the loop slipping a statement into it, so the connection needs no lock.
    """

    #: BEGIN IMMEDIATE takes the database's one write lock: nothing more to lock
    locks_rows = False

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @staticmethod
    def stamp(value: dt.datetime) -> str:
        return rows.iso(value)  # no time type in SQLite: ISO text in UTC, which sorts as time does

    @staticmethod
    def array(values: Sequence[Any]) -> str:
        return encode(list(values))  # a JSON array, which the queries read with json_each

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        with transaction(self._conn) as conn:
            yield SqliteTransaction(conn)

    async def fetch_all(self, query: str, params: Params) -> list[sqlite3.Row]:
        with translated_errors():
            return self._conn.execute(Q[query], params).fetchall()

    async def claim(self, params: Params) -> list[sqlite3.Row]:
        # no UPDATE ... LIMIT in SQLite: find the messages, then lease them, in one transaction
        with transaction(self._conn) as conn:
            seqs = [row["seq"] for row in conn.execute(Q["claimable"], params)]
            if not seqs:
                return []
            return conn.execute(Q["lease"], {**params, "seqs": encode(seqs)}).fetchall()

    async def wait_for_work(self, timeout_s: float) -> str | None:
        # SQLite cannot tell other processes about a commit: workers poll, with a short timeout
        await asyncio.sleep(timeout_s)
        return None

    async def migrate(self) -> list[int]:
        return migrate(self._conn)

    async def close(self) -> None:
        with translated_errors():
            self._conn.close()


class SqliteTransaction:
    """Named queries inside a transaction of :meth:`SqliteConnector.transaction`, which
    translates their errors."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, query: str, params: Params) -> int:
        return self._conn.execute(Q[query], params).rowcount

    async def execute_many(self, query: str, params: Sequence[Params]) -> int:
        return self._conn.executemany(Q[query], params).rowcount  # summed over the parameter sets

    async def fetch_one(self, query: str, params: Params) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(Q[query], params).fetchone()
        return row

    async def fetch_all(self, query: str, params: Params) -> list[sqlite3.Row]:
        return self._conn.execute(Q[query], params).fetchall()

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._conn.execute("SAVEPOINT changeset")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO changeset")
            raise
        finally:
            self._conn.execute("RELEASE changeset")

    async def announce(self, reason: str) -> None:
        """Nobody to tell: SQLite workers poll (see :meth:`SqliteConnector.wait_for_work`)."""


class SqliteBackend(SqlBackend):
    """flowbus's stores in one SQLite file, for one project."""

    def __init__(
        self,
        path: str | Path,
        project: str = "default",
        *,
        synchronous: str = "NORMAL",
        dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
    ) -> None:
        self.path = Path(path)
        connector = SqliteConnector(connect(path, synchronous=synchronous))
        super().__init__(connector, project, dedup_window_s=dedup_window_s)
