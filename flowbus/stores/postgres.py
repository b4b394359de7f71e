"""The PostgreSQL backend: many workers on many machines against one database.

Claims lease rows with ``FOR UPDATE SKIP LOCKED`` in batches, so workers never wait on each
other and never hold messages of one group at once (a group's next message is claimable only
when no earlier one is open, which every claimer sees). ``NOTIFY`` tells idle workers that new
work or a new config version is there. Every driver error is translated here: callers see
:class:`StoreError` or :class:`Conflict`, never a psycopg exception.

A connection the server dropped is opened again by the next statement, paced by a backoff
while the server cannot be reached: a store outage fails the statements that meet it, and
passes without a restart.

This module is the connector (connections, transactions, the claim, notices); the store
operations themselves are :mod:`flowbus.stores.sql_backend`'s. Install with
``pip install 'flowbus[postgres]'`` (psycopg 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from flowbus.errors import StoreError, StoreUnavailable
from flowbus.limits import admit
from flowbus.queue import DEFAULT_DEDUP_WINDOW_S
from flowbus.runtime.changes import Conflict
from flowbus.stores import rows
from flowbus.stores.backoff import Backoff
from flowbus.stores.sql_backend import Params, SqlBackend
from flowbus.stores.sql_files import load_migrations, load_queries

try:
    import psycopg
    from psycopg.pq import TransactionStatus
    from psycopg.rows import dict_row
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"the PostgreSQL backend needs psycopg: pip install 'flowbus[postgres]' ({exc})") from exc

Q = load_queries("postgres")
#: the statements with a ``<name>_bulk`` form (every parameter an array, an element a row), and
#: the parameters whose values must not repeat among the rows of one bulk statement (an upsert
#: cannot touch a row twice in one statement); rows that repeat go one statement a row
BULK_DISTINCT: dict[str, tuple[str, ...]] = {
    "upsert_entity": ("entity", "key"), "insert_entity": (), "insert_run": ("id",), "ack": ("id",),
}  # fmt: skip
#: the channel on which commits that queue work or publish a version are announced
CHANNEL = "flowbus"


@contextlib.asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """psycopg errors become flowbus errors at this boundary.

    A deadlock or a serialization failure means two writers met: the changeset is refused as a
    :class:`Conflict`, and the worker runs the message again on fresh data.
    """
    try:
        yield
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
        raise Conflict(f"PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # the server, not the statement
        raise StoreUnavailable(f"PostgreSQL: {str(exc).strip()}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL: {str(exc).strip()}") from exc


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """Apply the migrations not applied yet, under an advisory lock so concurrent starts agree."""
    applied = []
    async with translated_errors(), conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('flowbus migrations'))")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (number integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT number FROM schema_migrations")
        done = {row["number"] if isinstance(row, dict) else row[0] for row in await cursor.fetchall()}
        for number, name, sql in load_migrations("postgres"):
            if number in done:
                continue
            await conn.execute(sql.encode())  # trusted SQL shipped with flowbus: a script of many statements
            await conn.execute("INSERT INTO schema_migrations (number, name) VALUES (%s, %s)", (number, name))
            applied.append(number)
    return applied


class PostgresConnector:
    """The SQL backend's way into PostgreSQL (see :mod:`flowbus.stores.sql_backend`): one
    connection for statements, and one more, opened on the first wait, that listens."""

    #: row locks: writers lock what they write, in one order, so that they queue and never deadlock
    locks_rows = True

    def __init__(self, url: str, project: str) -> None:
        self.url = url
        self.project = project
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._connecting = asyncio.Lock()
        self._migrated = False
        #: paces reconnects while the server cannot be reached
        self.reconnects = Backoff()
        self._unreachable = ""

    @staticmethod
    def stamp(value: dt.datetime) -> dt.datetime:
        return value  # timestamptz columns take the datetime itself

    @staticmethod
    def array(values: Sequence[Any]) -> list[Any]:
        return list(values)  # psycopg passes a list as an array

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        """The connection, opened again when the server dropped it (a restart, a failover, a
        terminated backend): the statement that met the drop fails, the next one reconnects."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._connecting:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            conn = await self._connect(row_factory=dict_row)
            if not self._migrated:
                try:
                    await migrate(conn)
                except StoreError:
                    await conn.close()
                    raise
                self._migrated = True
            self._conn = conn
        return conn

    async def _connect(self, **options: Any) -> psycopg.AsyncConnection[Any]:
        """A new connection, or a :class:`StoreError` at once while the last try's backoff lasts."""
        wait_s = self.reconnects.remaining_s()
        if wait_s:
            raise StoreUnavailable(
                f"PostgreSQL cannot be reached ({self._unreachable}); trying again in {wait_s:.1f} s"
            )
        try:
            async with translated_errors():
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, **options)
        except StoreError as exc:
            self.reconnects.failed()
            self._unreachable = exc.message
            raise
        self.reconnects.succeeded()
        return conn

    async def reclaim_space(self) -> None:
        return None  # autovacuum frees the rows of purged batches for reuse

    async def migrate(self) -> list[int]:
        return await migrate(await self.connection())

    async def close(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None:
                async with translated_errors():
                    await conn.close()
        self._conn = self._listener = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """The connection, to this task alone, inside a transaction sent as one pipeline.

        BEGIN, the statements and COMMIT go out together, and only a statement whose answer is
        read (a count checked, rows fetched) waits for the server: a publish or a batch whose
        writes are all blind is one round trip. An error of a statement nobody waited for
        surfaces at the next wait or at the commit, and fails the transaction all the same.

        One connection serves the worker's batch and its heartbeat, two tasks: the lock keeps
        their statements from landing inside each other's transactions.
        """
        async with self._lock:
            conn = await self.connection()
            try:
                async with translated_errors(), conn.pipeline() as pipeline:
                    await conn.execute("BEGIN")
                    try:
                        yield PostgresTransaction(conn, pipeline, self.project)
                    except Exception:
                        await _roll_back(conn, pipeline, "ROLLBACK")
                        raise
                    await conn.execute("COMMIT")
            except BaseException as failed:
                await self._after_failed_transaction(conn, failed)
                raise

    async def _after_failed_transaction(self, conn: psycopg.AsyncConnection[Any], failed: BaseException) -> None:
        """Leave the connection ready for the next transaction, or closed.

        A statement that failed in the pipeline made the server skip the rest, the COMMIT or
        ROLLBACK too, so the transaction may still be open (aborted): roll it back. Cancelled
        half-way (a signal, a timeout), the connection's protocol state is unknown: close it,
        and the next statement connects again.
        """
        if not isinstance(failed, Exception):
            await conn.close()
            return
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ROLLBACK")

    async def fetch_all(self, query: str, params: Params) -> list[dict[str, Any]]:
        async with self._lock:
            conn = await self.connection()
            async with translated_errors():
                cursor = await conn.execute(Q[query], params)
                return await cursor.fetchall()

    async def claim(self, params: Params) -> list[dict[str, Any]]:
        async with self._lock:
            conn = await self.connection()
            async with translated_errors():
                # due delayed messages become ready first: an index probe when none is due
                await conn.execute(Q["promote_due"], params)
                # FOR UPDATE SKIP LOCKED, leased in the same statement (but for limited messages)
                cursor = await conn.execute(Q["claim"], params)
                found: list[dict[str, Any]] = await cursor.fetchall()
        if not any(row["limited"] for row in found):
            return found
        async with self.transaction() as tx:
            admitted = await _admitted(tx, [row for row in found if row["limited"]], params)
        return [row for row in found if not row["limited"]] + admitted

    async def wait_for_work(self, timeout_s: float) -> str | None:
        """Wait on ``LISTEN flowbus`` (a connection of its own) for this project's announcements.

        A dropped listener ends the wait as if it had timed out (the worker's next claim, which
        it makes after every wait, finds what was announced meanwhile, or meets the outage and
        says so), and is replaced on the next wait, which listens again.
        """
        listener = self._listener
        if listener is None or listener.closed:
            listener = await self._connect()
            try:
                async with translated_errors():
                    await listener.execute(f"LISTEN {CHANNEL}")
            except StoreError:
                await listener.close()
                raise
            self._listener = listener
        try:
            async with translated_errors():
                async for notice in listener.notifies(timeout=timeout_s):
                    reason, _, project = notice.payload.partition(" ")
                    if project == self.project:
                        return reason
        except StoreError:
            if not listener.closed:
                raise
        return None


class PostgresTransaction:
    """Named queries inside a transaction of :meth:`PostgresConnector.transaction`, which
    translates their errors; in pipeline mode, so only the statements whose answer is read
    wait for the server."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], pipeline: psycopg.AsyncPipeline, project: str) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._project = project
        self._savepoints = 0

    async def execute(self, query: str, params: Params) -> int:
        cursor = await self._conn.execute(Q[query], params)
        await self._pipeline.sync()  # the count is the answer: wait for it
        return cursor.rowcount

    async def execute_many(self, query: str, params: Sequence[Params]) -> int:
        async with self._conn.cursor() as cursor:
            await self._send_many(cursor, query, params)
            await self._pipeline.sync()
            return cursor.rowcount  # summed over the parameter sets

    async def write_many(self, query: str, params: Sequence[Params]) -> None:
        await self._send_many(self._conn.cursor(), query, params)  # sent with the next wait

    @staticmethod
    async def _send_many(cursor: psycopg.AsyncCursor[Any], query: str, params: Sequence[Params]) -> None:
        """Send ``query`` for every parameter set: as one statement of arrays when it has a bulk
        form (each statement sent costs the client a write to the socket: with a batch's runs,
        acknowledgements and records, those writes were most of a worker's CPU), else one
        statement a set, pipelined."""
        distinct = BULK_DISTINCT.get(query)
        if distinct is not None and len(params) > 1 and _distinct(params, distinct):
            columns = {name: [p[name] for p in params] for name in params[0]}
            await cursor.execute(Q[f"{query}_bulk"], columns)
        else:
            await cursor.executemany(Q[query], params)

    async def fetch_one(self, query: str, params: Params) -> dict[str, Any] | None:
        row: dict[str, Any] | None = await (await self._conn.execute(Q[query], params)).fetchone()
        return row

    async def fetch_all(self, query: str, params: Params) -> list[dict[str, Any]]:
        return await (await self._conn.execute(Q[query], params)).fetchall()

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A savepoint whose statements' errors are its own: it waits for them before it ends,
        so that a failure is not charged to the statements sent after it."""
        self._savepoints += 1
        name = f"changeset_{self._savepoints}"
        async with translated_errors():
            await self._conn.execute(f"SAVEPOINT {name}")
            try:
                yield
                await self._pipeline.sync()
            except Exception:
                await _roll_back(self._conn, self._pipeline, f"ROLLBACK TO SAVEPOINT {name}")
                raise
            await self._conn.execute(f"RELEASE SAVEPOINT {name}")

    async def announce(self, reason: str) -> None:
        await self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{reason} {self._project}"))


async def _admitted(tx: PostgresTransaction, found: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Lease the limited candidates of a claim that flow control admits (flowbus.limits).

    Under a transaction-long advisory lock on each of their keys, taken in sorted order, so that
    two claims never both take a key's last slot or its next turn: the slots taken and the
    arrival times are read after the lock, and the candidates read again (another claim may have
    taken some), then the throttled ones are moved to their turn and the admitted ones leased.
    """
    project = params["project"]
    keys = {f"c{row['concurrency_key']}" for row in found if row["concurrency_key"] is not None}
    keys |= {f"r{row['rate_key']}" for row in found if row["rate_key"] is not None}
    await tx.fetch_all("lock_flow_keys", {"project": project, "keys": sorted(keys)})
    # the time read now, after the locks: a claim that waited for them must not admit by the clock
    # it read before (the next claim would find the key's turn already come)
    now = max(params["now"], time.time())
    until = now + params["until"] - params["now"]  # and so is its lease
    seqs = [row["seq"] for row in found]
    candidates = [rows.candidate(row) for row in await tx.fetch_all("limited_candidates", {"seqs": seqs, "now": now})]
    concurrency = sorted({c.concurrency_key for c in candidates if c.concurrency_key is not None})
    rates = sorted({c.rate_key for c in candidates if c.rate_key is not None})
    scope = {"project": project, "now": now}
    leased = {r["key"]: r["n"] for r in await tx.fetch_all("leased_by_key", {**scope, "keys": concurrency})}
    arrivals = {r["key"]: r["arrival"] for r in await tx.fetch_all("rate_arrivals", {**scope, "keys": rates})}
    admission = admit(candidates, leased=leased, arrivals=arrivals, now=now)
    if admission.arrivals:
        arrived = [{"project": project, "key": k, "arrival": at} for k, at in sorted(admission.arrivals.items())]
        await tx.write_many("set_arrival", arrived)
    if admission.throttled:
        await tx.write_many("throttle", [{"seq": seq, "available_at": at} for seq, at in admission.throttled])
    if not admission.admitted:
        return []
    lease = {"seqs": admission.admitted, "owner": params["owner"], "until": until}
    return await tx.fetch_all("lease", lease)


def _distinct(params: Sequence[Params], names: tuple[str, ...]) -> bool:
    """Whether no two parameter sets hold the same values of ``names``."""
    return not names or len({tuple(p[name] for name in names) for p in params}) == len(params)


async def _roll_back(conn: psycopg.AsyncConnection[Any], pipeline: psycopg.AsyncPipeline, rollback: str) -> None:
    """Send ``rollback`` in a pipeline whose statements may have failed, and wait for it.

    The statements sent since the last wait are heard out first: one that failed made the
    server skip what follows it, the rollback too. And the rollback is waited for before
    anything else is sent: on a rollback psycopg forgets the statements it prepared, and if
    it learnt of it while sending the next statement it would prepare that one and then
    deallocate it (the next use fails: "prepared statement does not exist").
    """
    with contextlib.suppress(psycopg.Error):
        await pipeline.sync()
    await conn.execute(rollback)
    await pipeline.sync()


class PostgresBackend(SqlBackend):
    """flowbus's stores in one PostgreSQL database, for one project."""

    def __init__(self, url: str, project: str = "default", *, dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S) -> None:
        self.url = url
        self._postgres = PostgresConnector(url, project)
        super().__init__(self._postgres, project, dedup_window_s=dedup_window_s)

    @property
    def _reconnects(self) -> Backoff:
        """The connector's reconnect pacing (how many tries failed in a row)."""
        return self._postgres.reconnects

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        """The statements' connection, opened again if the server dropped it."""
        return await self._postgres.connection()


def projects_in(url: str) -> list[str]:
    """The projects with a published config in a database (none when it is not migrated)."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            found = conn.execute(Q["projects"]).fetchall()
    except psycopg.errors.UndefinedTable:
        return []
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL: {str(exc).strip()}") from exc
    return [row[0] for row in found]
