"""The SQLite backend: the embedded default, one file, zero setup.

One connection, in WAL mode, used from the thread of the event loop that opened it. A sqlite3
call takes microseconds; a hop to a database thread costs more than that, so calls are made
directly and a unit of work is one transaction. Several processes may share the file (WAL
allows readers beside the one writer; writers queue on the lock with a busy timeout).

SQLite cannot tell anyone of a commit, so a waiting worker hears of new work in two ways: a
commit that queues work in this process wakes the waits on the same file at once (a process-wide
registry of waits, :func:`_ring`), and a commit by another process shows as a change of the
connection's ``PRAGMA data_version``, which a wait looks at every few milliseconds
(:data:`COMMIT_POLL_MIN_S`, less often as the quiet lasts).

This module connects, migrates, opens transactions, runs the named queries of
``sql/sqlite/queries.sql``, claims and translates errors (callers see :class:`StoreError` or
:class:`Conflict`); the store operations themselves are :mod:`flowbus.stores.sql_backend`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from flowbus.codec import encode
from flowbus.errors import StoreError, StoreUnavailable
from flowbus.limits import Candidate, admit
from flowbus.queue import DEFAULT_DEDUP_WINDOW_S
from flowbus.stores import rows
from flowbus.stores.sql_backend import Params, SqlBackend
from flowbus.stores.sql_files import load_migrations, load_queries
from flowbus.stores.sqlite_statements import positional_queries

#: the named queries, bound by position (flowbus.stores.sqlite_statements)
Q = positional_queries(load_queries("sqlite"))


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
    if synchronous not in ("NORMAL", "FULL"):  # it is written into the PRAGMA: never anything else
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    with translated_errors():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        conn.row_factory = sqlite3.Row
        # takes effect in a new file only (before its first table): purged pages can then be
        # given back a few at a time (flowbus.retention) rather than by a full VACUUM. Set on a
        # new file only: on one in use it writes, and every waiting worker would take the write
        # for new work
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
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
            found = conn.execute(Q["projects"].sql).fetchall()
        except sqlite3.OperationalError:  # not migrated yet: no projects
            return []
        return [row[0] for row in found]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: how often a waiting worker looks for commits by other processes (a ``PRAGMA data_version``
#: takes microseconds, but each look wakes the process: ~0.15 ms of CPU on a small VM): every
#: 5 ms just after work, so that a steady trickle of sends from another process is noticed within
#: 5 ms, then less often as the quiet lasts (a quarter of it), up to every 200 ms, the worker's
def _admitted(conn: sqlite3.Connection, candidates: list[Candidate], params: Params) -> list[int]:
    """The candidates flow control admits (flowbus.limits); the throttled ones moved to their turn
    and their rate keys' arrival times moved on, in the claim's transaction."""
    project, now = params["project"], params["now"]  # read under the write lock (claim)
    keys = sorted({c.concurrency_key for c in candidates if c.concurrency_key is not None})
    rates = sorted({c.rate_key for c in candidates if c.rate_key is not None})
    leased = {r["key"]: r["n"] for r in _run(conn, "leased_by_key", {**params, "keys": encode(keys)})}
    arrivals = {r["key"]: r["arrival"] for r in _run(conn, "rate_arrivals", {**params, "keys": encode(rates)})}
    admission = admit(candidates, leased=leased, arrivals=arrivals, now=now)
    _run_many(conn, "set_arrival", [
        {"project": project, "key": key, "arrival": at} for key, at in admission.arrivals.items()
    ])  # fmt: skip
    _run_many(conn, "throttle", [{"seq": seq, "available_at": at} for seq, at in admission.throttled])
    return admission.admitted


#: longest idle sleep, so that a worker idle for long wakes no more often than its claims do
#: (benchmarks/bench_light_load.py measures both)
COMMIT_POLL_MIN_S = 0.005
COMMIT_POLL_MAX_S = 0.2

#: a database file (its device and inode: the same file whatever path opened it) and a project
Doorbell = tuple[int, int, str]

#: the waits for work in progress in this process, by the doorbell they wait at. A wait puts its
#: future in and takes it out itself, so only waits in progress are held, however many backends
#: open and close; the lock is for backends used from the event loops of other threads
_WAITS: dict[Doorbell, set[asyncio.Future[str]]] = {}
_WAITS_LOCK = threading.Lock()


def waits_in_progress() -> int:
    """How many waits for work of this process the registry holds now (for tests)."""
    with _WAITS_LOCK:
        return sum(len(waits) for waits in _WAITS.values())


@contextlib.contextmanager
def _waiting_at(doorbell: Doorbell, woken: asyncio.Future[str]) -> Iterator[None]:
    with _WAITS_LOCK:
        _WAITS.setdefault(doorbell, set()).add(woken)
    try:
        yield
    finally:
        with _WAITS_LOCK:
            waits = _WAITS[doorbell]
            waits.discard(woken)
            if not waits:
                del _WAITS[doorbell]


def _ring(doorbell: Doorbell, reason: str) -> None:
    """Wake every wait at ``doorbell`` with ``reason``: at once in this event loop, and through
    ``call_soon_threadsafe`` in another (a future may only be settled from its own loop)."""
    with _WAITS_LOCK:
        waits = list(_WAITS.get(doorbell, ()))
    here = asyncio.get_running_loop()
    for woken in waits:
        loop = woken.get_loop()
        if loop is here:
            _settle(woken, reason)
        else:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_settle, woken, reason)


def _settle(woken: asyncio.Future[str], reason: str) -> None:
    if not woken.done():  # a wait rung twice, or already over
        woken.set_result(reason)


def _doorbell(conn: sqlite3.Connection, project: str) -> Doorbell | None:
    """Where the waits on ``conn``'s file for ``project`` are rung; None for a database without a
    file (in memory, temporary), which no other connection can see."""
    file = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not file:
        return None
    found = os.stat(file)
    return found.st_dev, found.st_ino, project


class SqliteConnector:
    """The SQL backend's way into one SQLite connection (see :mod:`flowbus.stores.sql_backend`).

    Its coroutines never suspend (but for ``wait_for_work``): a transaction runs from BEGIN to
    COMMIT without another task of the loop slipping a statement into it, so the connection needs
    no lock.
    """

    #: BEGIN IMMEDIATE takes the database's one write lock: nothing more to lock
    locks_rows = False

    def __init__(self, conn: sqlite3.Connection, project: str) -> None:
        self._conn = conn
        with translated_errors():
            self._doorbell = _doorbell(conn, project)
            #: the ``data_version`` as of the last claim: a different one means another connection
            #: committed since, maybe work
            self._data_version = self._read_data_version()
        #: when (the loop's clock) this connector last found work or another connection's commit
        self._busy_at = float("-inf")

    @staticmethod
    def stamp(value: dt.datetime) -> str:
        return rows.iso(value)  # no time type in SQLite: ISO text in UTC, which sorts as time does

    @staticmethod
    def array(values: Sequence[Any]) -> str:
        return encode(list(values))  # a JSON array, which the queries read with json_each

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        with transaction(self._conn) as conn:
            tx = SqliteTransaction(conn)
            yield tx
        # rung once committed, never before: a wait woken earlier might claim before the commit
        if tx.announced is not None and self._doorbell is not None:
            _ring(self._doorbell, tx.announced)

    async def fetch_all(self, query: str, params: Params) -> list[dict[str, Any]]:
        with translated_errors():
            return _dicts(_run(self._conn, query, params))

    async def claim(self, params: Params) -> list[dict[str, Any]]:
        # no UPDATE ... LIMIT in SQLite: find the messages, then lease them, in one transaction
        with transaction(self._conn) as conn:
            # read under the write lock, so that any commit after this claim's look changes it
            self._data_version = self._read_data_version()
            # and the clock too: a claim that waited for the lock admits, and leases, by the time
            # it got it (else the next claim found a rate key's turn already come)
            now = max(params["now"], time.time())
            params = {**params, "now": now, "until": now + params["until"] - params["now"]}
            _run(conn, "promote_due", params)
            found = _run(conn, "claimable", params).fetchall()
            seqs = [row[0] for row in found]
            if any(row[1] for row in found):  # under the write lock: one claim at a time
                limits = _run(conn, "limited_candidates", {"seqs": encode(seqs)})
                seqs = _admitted(conn, [rows.candidate(row) for row in limits], params)
            if not seqs:
                return []
            self._busy_at = asyncio.get_running_loop().time()
            return _dicts(_run(conn, "lease", {**params, "seqs": encode(seqs)}))

    async def wait_for_work(self, timeout_s: float) -> str | None:
        """Wait up to ``timeout_s`` for a commit, since the last claim, that may have queued work:
        the reason a commit of this process announced (``work``, ``version``) as soon as it
        commits; ``work`` within :data:`COMMIT_POLL_MIN_S` to :data:`COMMIT_POLL_MAX_S` of a
        commit by another connection; None on timeout."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[str] = loop.create_future()
        deadline = loop.time() + timeout_s
        with contextlib.ExitStack() as registered:
            if self._doorbell is not None:
                registered.enter_context(_waiting_at(self._doorbell, woken))
            # looked at once registered: a commit before this wait (a thread's, between the
            # claim and here) shows here, one after it rings
            while not self._committed_elsewhere():
                now = loop.time()
                if now >= deadline:
                    return None
                poll_s = min(COMMIT_POLL_MAX_S, max(COMMIT_POLL_MIN_S, (now - self._busy_at) / 4))
                await asyncio.wait((woken,), timeout=min(deadline - now, poll_s))
                if woken.done():
                    self._busy_at = loop.time()
                    return woken.result()
            self._busy_at = loop.time()
            return "work"

    def _committed_elsewhere(self) -> bool:
        with translated_errors():
            version = self._read_data_version()
        changed, self._data_version = version != self._data_version, version
        return changed

    def _read_data_version(self) -> int:
        version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    async def reclaim_space(self) -> None:
        # run as a script: one step of the statement frees one page, and sqlite3's execute steps
        # a statement without result columns only once
        with translated_errors():
            self._conn.executescript(Q["reclaim_space"].sql)

    async def migrate(self) -> list[int]:
        return migrate(self._conn)

    async def close(self) -> None:
        with translated_errors():
            self._conn.close()


def _run(conn: sqlite3.Connection, query: str, params: Params) -> sqlite3.Cursor:
    sql, values = Q[query]
    try:
        return conn.execute(sql, values(params))
    except KeyError as missing:
        raise _no_value(query, missing) from None


def _run_many(conn: sqlite3.Connection, query: str, params: Sequence[Params]) -> sqlite3.Cursor:
    sql, values = Q[query]
    try:
        return conn.executemany(sql, map(values, params))
    except KeyError as missing:
        raise _no_value(query, missing) from None


def _no_value(query: str, missing: KeyError) -> StoreError:
    """A parameter its mapping lacks: a StoreError, as sqlite3's own named binding made it, so that
    a caller that falls back on a store's refusal (the worker's batch) still does."""
    return StoreError(f"SQLite: no value for :{missing.args[0]} in query {query}")


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """A cursor's rows as dicts: a ``sqlite3.Row`` finds a column by name by comparing it with
    each name in turn, which for a claimed message's 27 columns cost more than the rest of
    reading it; a dict built once per row is read at the price of a hash."""
    cursor.row_factory = None  # plain tuples: no sqlite3.Row made only to be read once
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


class SqliteTransaction:
    """Named queries inside a transaction of :meth:`SqliteConnector.transaction`, which
    translates their errors."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        #: the reason to ring the waits with once committed, if any
        self.announced: str | None = None

    async def execute(self, query: str, params: Params) -> int:
        return _run(self._conn, query, params).rowcount

    async def execute_many(self, query: str, params: Sequence[Params]) -> int:
        return _run_many(self._conn, query, params).rowcount  # summed over the parameter sets

    async def write_many(self, query: str, params: Sequence[Params]) -> None:
        _run_many(self._conn, query, params)

    async def fetch_one(self, query: str, params: Params) -> sqlite3.Row | None:
        row: sqlite3.Row | None = _run(self._conn, query, params).fetchone()
        return row

    async def fetch_all(self, query: str, params: Params) -> list[sqlite3.Row]:
        return _run(self._conn, query, params).fetchall()

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
        """Wake the waits of this process on the same file, once committed (the other processes'
        see the commit change their ``data_version``: :meth:`SqliteConnector.wait_for_work`)."""
        self.announced = reason


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
        connector = SqliteConnector(connect(path, synchronous=synchronous), project)
        super().__init__(connector, project, dedup_window_s=dedup_window_s)
