"""The PostgreSQL backend: many workers on many machines against one database.

Claims lease rows with ``FOR UPDATE SKIP LOCKED`` in batches, so workers never wait on each
other and never hold messages of one group at once (a group's next message is claimable only
when no earlier one is open, which every claimer sees). ``NOTIFY`` tells idle workers that new
work or a new config version is there. Every driver error is translated here: callers see
:class:`StoreError` or :class:`Conflict`, never a psycopg exception.

A connection the server dropped is opened again by the next statement, paced by a backoff
while the server cannot be reached: a store outage fails the statements that meet it, and
passes without a restart.

Install with ``pip install 'flowbus[postgres]'`` (psycopg 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from flowbus.codec import decode, encode
from flowbus.config.versions import ConfigVersion
from flowbus.errors import StoreError, StoreUnavailable
from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import floor_id, new_id
from flowbus.keys import ApiKey
from flowbus.queue import DEFAULT_DEDUP_WINDOW_S, MessageState, OutgoingMessage, QueuedMessage, QueueName
from flowbus.runtime.changes import Changeset, Conflict, Record, Versioned
from flowbus.runtime.records import Run
from flowbus.stores import rows
from flowbus.stores.backoff import Backoff
from flowbus.stores.protocols import (
    ANY_DEAD_LETTER,
    ANY_EVENT,
    ANY_RECORD,
    ANY_RUN,
    DeadLetterFilter,
    EventFilter,
    FieldFilter,
    GroupStat,
    KeyedRecord,
    Manifest,
    QueueStat,
    RunFilter,
    RunPoint,
    apply_each,
)
from flowbus.stores.sql_files import load_migrations, load_queries

try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"the PostgreSQL backend needs psycopg: pip install 'flowbus[postgres]' ({exc})") from exc

Q = load_queries("postgres")
#: the channel on which commits that queue work or publish a version are announced
CHANNEL = "flowbus"


def _same(value: dt.datetime) -> dt.datetime:
    return value


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


class PostgresBackend:
    """flowbus's stores in one PostgreSQL database, for one project."""

    def __init__(self, url: str, project: str = "default", *, dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S) -> None:
        self.url = url
        self.project = project
        self.dedup_window_s = dedup_window_s
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._connecting = asyncio.Lock()
        self._migrated = False
        #: paces reconnects while the server cannot be reached
        self._reconnects = Backoff()
        self._unreachable = ""

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
        wait_s = self._reconnects.remaining_s()
        if wait_s:
            raise StoreUnavailable(
                f"PostgreSQL cannot be reached ({self._unreachable}); trying again in {wait_s:.1f} s"
            )
        try:
            async with translated_errors():
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, **options)
        except StoreError as exc:
            self._reconnects.failed()
            self._unreachable = exc.message
            raise
        self._reconnects.succeeded()
        return conn

    async def migrate(self) -> list[int]:
        return await migrate(await self.connection())

    async def close(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None:
                async with translated_errors():
                    await conn.close()
        self._conn = self._listener = None

    async def add_key(self, key: ApiKey) -> None:
        async with self._transaction() as conn:
            await conn.execute(Q["insert_key"], rows.key_row(self.project, key, _same))

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._one("get_key", id=key_id)
        return None if row is None else rows.api_key(row)

    async def find_key(self, key_id: str) -> ApiKey | None:
        row = await self._one("find_key", id=key_id)
        return None if row is None else rows.api_key(row)

    async def list_keys(self) -> list[ApiKey]:
        return [rows.api_key(row) for row in await self._all("list_keys")]

    async def revoke_key(self, key_id: str) -> bool:
        return bool(await self._all_write("revoke_key", id=key_id))

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

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection, to this task alone, inside a transaction.

        One connection serves the worker's batch and its heartbeat, two tasks: the lock keeps
        their statements from landing inside each other's transactions.
        """
        async with self._lock:
            conn = await self.connection()
            async with translated_errors(), conn.transaction():
                yield conn

    async def _all(self, query: str, **params: Any) -> list[dict[str, Any]]:
        async with self._lock:
            conn = await self.connection()
            async with translated_errors():
                cursor = await conn.execute(Q[query], {"project": self.project, **params})
                return await cursor.fetchall()

    async def _one(self, query: str, **params: Any) -> dict[str, Any] | None:
        found = await self._all(query, **params)
        return found[0] if found else None

    async def _run(self, query: str, conn: psycopg.AsyncConnection[Any], **params: Any) -> int:
        cursor = await conn.execute(Q[query], {"project": self.project, **params})
        return cursor.rowcount

    # -- changesets ----------------------------------------------------------------------

    async def apply(self, changeset: Changeset) -> None:
        [conflict] = await self.apply_many([changeset])
        if conflict is not None:
            raise conflict

    async def apply_many(self, changesets: Sequence[Changeset]) -> list[Conflict | None]:
        if len(changesets) > 1:
            # no conflict anywhere, the common case: one transaction without savepoints
            try:
                async with self._transaction() as conn:
                    await self._lock_rows(conn, changesets)
                    await self._write_batch(conn, changesets)
                    await self._notify(conn, changesets)
            except Conflict:
                pass
            else:
                return [None] * len(changesets)
        async with self._transaction() as conn:
            await self._lock_rows(conn, changesets)

            async def in_savepoint(changeset: Changeset) -> None:
                # translated outside the savepoint, so that it is rolled back first
                async with translated_errors(), conn.transaction():
                    await self._write(conn, changeset)

            results = await apply_each(changesets, in_savepoint)
            await self._notify(conn, [c for c, r in zip(changesets, results, strict=True) if r is None])
        return results

    async def _lock_rows(self, conn: psycopg.AsyncConnection[Any], changesets: Sequence[Changeset]) -> None:
        """Lock the existing entity rows the changesets write, and the chain counters they raise,
        each in one sorted order.

        Two workers whose batches write the same rows in different orders would otherwise
        deadlock; taking every lock up front, sorted, makes them queue instead. A counter is
        locked by adding 0 to it (its row made if it is new).
        """
        addresses = sorted({address for c in changesets for address in c.writes})
        if addresses:
            await conn.execute(
                Q["lock_entities"],
                {"project": self.project, "entities": [a[0] for a in addresses], "keys": [a[1] for a in addresses]},
            )
        counted = rows.chain_count_rows(self.project, [e for c in changesets for e in c.events])
        roots = sorted({row["correlation_id"] for row in counted})
        if roots:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    Q["count_in_chain"], [{"project": self.project, "correlation_id": r, "events": 0} for r in roots]
                )

    async def _notify(self, conn: psycopg.AsyncConnection[Any], changesets: Sequence[Changeset]) -> None:
        if any(c.messages or c.retries for c in changesets):
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"work {self.project}"))

    async def _write_batch(self, conn: psycopg.AsyncConnection[Any], changesets: Sequence[Changeset]) -> None:
        """Write a whole batch with one ``executemany`` per kind of statement (psycopg pipelines
        them): a handful of round trips per batch instead of several per changeset.

        Any check that does not hold (a version, a lease, an insert that found a row) raises
        :class:`Conflict`; the caller then rolls back and goes changeset by changeset.
        """
        project = self.project
        inserts: list[dict[str, Any]] = []
        upserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for changeset in changesets:
            if changeset.messages or changeset.retries or any(w.record is None for w in changeset.writes.values()):
                await self._write(conn, changeset)  # the rarer shapes keep the one-by-one path
                continue
            for (entity, key), write in changeset.writes.items():
                row = {"project": project, "entity": entity, "key": key, "data": encode(write.record)}
                if write.expected_version is None:
                    upserts.append(row)
                elif write.expected_version == 0:
                    inserts.append(row)
                else:
                    updates.append({**row, "expected": write.expected_version})
        simple = [
            c for c in changesets if not (c.messages or c.retries or any(w.record is None for w in c.writes.values()))
        ]
        acks = [rows.ack_row(project, a) for c in simple for a in c.acks]
        events = [rows.event_row(project, e, _same) for c in simple for e in c.events]
        counts = rows.chain_count_rows(project, [e for c in simple for e in c.events])
        runs = [rows.run_row(project, r, _same) for c in simple for r in c.runs]
        async with conn.cursor() as cursor:
            for query, params, expect_all in (
                ("insert_entity", inserts, True),
                ("upsert_entity", upserts, False),
                ("update_entity", updates, True),
                ("insert_event", events, False),
                ("count_in_chain", counts, False),
                ("insert_run", runs, False),
                ("ack", acks, True),
            ):
                if not params:
                    continue
                await cursor.executemany(Q[query], params)
                if expect_all and cursor.rowcount != len(params):
                    raise Conflict(f"a batch check did not hold ({query}: {cursor.rowcount} of {len(params)} rows)")

    async def _write(self, conn: psycopg.AsyncConnection[Any], changeset: Changeset) -> None:
        project = self.project
        for (entity, key), write in changeset.writes.items():
            await self._write_entity(conn, entity, key, write.record, write.expected_version)
        async with conn.cursor() as cursor:
            if changeset.events:
                await cursor.executemany(
                    Q["insert_event"], [rows.event_row(project, e, _same) for e in changeset.events]
                )
                await cursor.executemany(Q["count_in_chain"], rows.chain_count_rows(project, changeset.events))
            if changeset.runs:
                await cursor.executemany(Q["insert_run"], [rows.run_row(project, r, _same) for r in changeset.runs])
        if changeset.messages:
            await self._send(conn, changeset.messages)
        for ack in changeset.acks:
            if await self._run("ack", conn, **rows.ack_row(project, ack)) != 1:
                raise Conflict(f"the lease on message {ack.message_id} was lost")
        for retry in changeset.retries:
            if await self._run("retry", conn, **rows.retry_row(self.project, retry)) != 1:
                raise Conflict(f"the lease on message {retry.message_id} was lost")

    async def _write_entity(
        self, conn: psycopg.AsyncConnection[Any], entity: str, key: str, record: Record | None, expected: int | None
    ) -> None:
        params = {"entity": entity, "key": key, "expected": expected}
        if record is None:
            if expected is None:
                await self._run("delete_entity", conn, **params)
            elif expected == 0:
                cursor = await conn.execute(Q["entity_exists"], {"project": self.project, **params})
                if await cursor.fetchone() is not None:
                    raise Conflict(f"{entity} {key!r} was created since it was read as absent")
            elif await self._run("delete_entity_at", conn, **params) != 1:
                raise Conflict(f"{entity} {key!r} changed since it was read")
            return
        params["data"] = encode(record)
        if expected is None:
            await self._run("upsert_entity", conn, **params)
        elif expected == 0:
            if await self._run("insert_entity", conn, **params) != 1:
                raise Conflict(f"{entity} {key!r} was created since it was read as absent")
        elif await self._run("update_entity", conn, **params) != 1:
            raise Conflict(f"{entity} {key!r} changed since it was read (version {expected})")

    # -- entities ------------------------------------------------------------------------

    async def read_entity(self, entity: str, key: str) -> Versioned | None:
        row = await self._one("read_entity", entity=entity, key=key)
        return None if row is None else rows.versioned(row)

    async def entities(self, entity: str, *, limit: int = 1000) -> dict[str, Record]:
        found = await self._all("list_entities", entity=entity, limit=limit)
        return {row["key"]: freeze(decode(row["data"])) for row in found}

    async def list_entities(
        self, entity: str, where: FieldFilter = ANY_RECORD, *, after: str | None = None, limit: int = 100
    ) -> list[KeyedRecord]:
        found = await self._all("entity_page", **rows.entity_page(entity, where, after, limit))
        return [rows.keyed_record(row) for row in found]

    # -- events, runs, journal -------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventInstance | None:
        row = await self._one("get_event", id=event_id)
        return None if row is None else rows.event(row)

    async def event_chain(self, correlation_id: str) -> Sequence[EventInstance]:
        return [rows.event(row) for row in await self._all("event_chain", correlation_id=correlation_id)]

    async def count_events(self) -> int:
        row = await self._one("count_events")
        return int(row["count"]) if row is not None else 0

    async def chain_events(self, correlation_id: str) -> int:
        row = await self._one("chain_events", correlation_id=correlation_id)
        return int(row["events"]) if row is not None else 0

    async def list_events(
        self, where: EventFilter = ANY_EVENT, *, before: str | None = None, limit: int = 100
    ) -> list[EventInstance]:
        return [
            rows.event(row) for row in await self._all("list_events", **rows.event_page(where, before, limit, _same))
        ]

    async def list_runs(self, where: RunFilter = ANY_RUN, *, before: str | None = None, limit: int = 100) -> list[Run]:
        return [rows.run(row) for row in await self._all("list_runs", **rows.run_page(where, before, limit))]

    async def get_run(self, run_id: str) -> Run | None:
        row = await self._one("get_run", id=run_id)
        return None if row is None else rows.run(row)

    async def run_points(self, since: dt.datetime, *, limit: int) -> list[RunPoint]:
        found = await self._all("run_points", since=floor_id(since), limit=limit)
        return [rows.run_point(r) for r in found]

    async def runs_for_event(self, event_id: str) -> Sequence[Run]:
        return [rows.run(row) for row in await self._all("runs_for_event", key=event_id)]

    async def runs_for_message(self, message_id: str) -> Sequence[Run]:
        return [rows.run(row) for row in await self._all("runs_for_message", key=message_id)]

    async def child_runs(self, run_id: str) -> Sequence[Run]:
        return [rows.run(row) for row in await self._all("child_runs", key=run_id)]

    async def record_runs(self, runs: Sequence[Run]) -> None:
        async with self._transaction() as conn, conn.cursor() as cursor:
            await cursor.executemany(Q["insert_run"], [rows.run_row(self.project, r, _same) for r in runs])

    async def journaled_output(self, execution_key: str, step_key: str) -> tuple[bool, Any]:
        row = await self._one("journaled_output", execution_key=execution_key, step_key=step_key)
        return (False, None) if row is None else (True, freeze(decode(row["output"])))

    async def journal_step(self, execution_key: str, step_key: str, output: Any) -> None:
        await self._all_write("journal_step", execution_key=execution_key, step_key=step_key, output=encode(output))

    async def _all_write(self, query: str, **params: Any) -> int:
        async with self._transaction() as conn:
            return await self._run(query, conn, **params)

    # -- queues --------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        async with self._transaction() as conn:
            ids = await self._send(conn, messages)
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"work {self.project}"))
        return ids

    async def _send(self, conn: psycopg.AsyncConnection[Any], messages: Sequence[OutgoingMessage]) -> list[str]:
        now = dt.datetime.now(dt.UTC)
        stamp = now.timestamp()
        ids = []
        # runs of messages without a dedup id go in one executemany (one round trip); a dedup
        # id needs its own look-up first, and the run before it is written first, so that the
        # messages keep their order (their seq) as sent
        plain: list[dict[str, Any]] = []
        for outgoing in messages:
            if outgoing.dedup_id is not None:
                await self._insert_messages(conn, plain)
                cursor = await conn.execute(
                    Q["find_dedup"],
                    {"project": self.project, "queue": outgoing.queue, "dedup_id": outgoing.dedup_id, "now": stamp},
                )
                seen = await cursor.fetchone()
                if seen is not None:
                    ids.append(seen["message_id"])
                    continue
            message_id = new_id()
            row = rows.message_row(self.project, message_id, outgoing, now, _same)
            ids.append(message_id)
            if outgoing.dedup_id is None:
                plain.append(row)
                continue
            await self._insert_messages(conn, [row])
            await self._run(
                "remember_dedup", conn, queue=outgoing.queue, dedup_id=outgoing.dedup_id, message_id=message_id,
                expires_at=stamp + self.dedup_window_s,
            )  # fmt: skip
        await self._insert_messages(conn, plain)
        return ids

    @staticmethod
    async def _insert_messages(conn: psycopg.AsyncConnection[Any], rows_: list[dict[str, Any]]) -> None:
        """Insert and forget ``rows_`` (emptied), in one round trip."""
        if rows_:
            async with conn.cursor() as cursor:
                await cursor.executemany(Q["insert_message"], rows_)
            rows_.clear()

    async def claim(
        self, queues: Sequence[QueueName], *, limit: int, owner: str, lease_s: float
    ) -> list[QueuedMessage]:
        now = time.time()
        found = await self._all(
            "claim", queues=[str(q) for q in queues], now=now, limit=limit, owner=owner, until=now + lease_s
        )
        return [rows.message(row) for row in sorted(found, key=lambda row: row["seq"])]

    async def extend_leases(self, message_ids: Sequence[str], *, owner: str, lease_s: float) -> int:
        return await self._all_write("extend_leases", ids=list(message_ids), owner=owner, until=time.time() + lease_s)

    async def release(self, message_ids: Sequence[str], *, owner: str) -> int:
        return await self._all_write("release", ids=list(message_ids), owner=owner)

    async def get_message(self, message_id: str) -> QueuedMessage | None:
        row = await self._one("get_message", id=message_id)
        return None if row is None else rows.message(row)

    async def queue_depth(self) -> dict[tuple[QueueName, MessageState], int]:
        return {(QueueName(r["queue"]), MessageState(r["state"])): r["n"] for r in await self._all("queue_depth")}

    async def queue_stats(self) -> list[QueueStat]:
        return [rows.queue_stat(r) for r in await self._all("queue_stats")]

    async def group_stats(self, *, limit: int) -> list[GroupStat]:
        return [rows.group_stat(r) for r in await self._all("group_stats", limit=limit)]

    async def dead_letters(
        self, where: DeadLetterFilter = ANY_DEAD_LETTER, *, after: str | None = None, limit: int = 100
    ) -> list[QueuedMessage]:
        found = await self._all("dead_letters", **rows.dead_letter_page(where, after, limit))
        return [rows.message(row) for row in found]

    async def redrive(self, message_ids: Sequence[str], *, config_version: int | None = None) -> int:
        async with self._transaction() as conn:
            count = 0
            for message_id in message_ids:
                count += await self._run("redrive", conn, id=message_id, now=time.time(), config_version=config_version)
            if count:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"work {self.project}"))
            return count

    # -- config versions -----------------------------------------------------------------

    async def save_draft(self, text: str, *, file: str) -> None:
        await self._all_write("save_draft", text=text, file=file)

    async def get_draft(self) -> tuple[str, str] | None:
        row = await self._one("get_draft")
        return None if row is None else (row["text"], row["file"])

    async def add_version(self, version: ConfigVersion, manifest: Manifest) -> ConfigVersion:
        async with self._transaction() as conn:
            await self._run("lock_versions", conn)  # one publisher numbers at a time
            cursor = await conn.execute(Q["next_version"], {"project": self.project})
            [number] = (await cursor.fetchone() or {}).values()  # coalesce(max) + 1: always one row
            stored = version._replace(number=number)
            await self._run("insert_version", conn, **stored._asdict())
            await self._run("insert_manifest", conn, **rows.manifest_row(self.project, manifest, number))
            await self._run("insert_outbox", conn, version=number)
        return stored

    async def versions(self) -> list[ConfigVersion]:
        return [rows.version(row) for row in await self._all("versions")]

    async def get_version(self, number: int) -> ConfigVersion | None:
        row = await self._one("get_version", number=number)
        return None if row is None else rows.version(row)

    async def active_version(self) -> int | None:
        row = await self._one("active_version")
        return None if row is None else int(row["version"])

    async def project_versions(self) -> list[int]:
        if await self._one("pending_outbox_peek") is None:
            return []
        projected = []
        async with self._transaction() as conn:
            cursor = await conn.execute(Q["pending_outbox"], {"project": self.project})
            for row in await cursor.fetchall():
                await self._run("activate", conn, version=row["version"])
                await self._run("outbox_done", conn, id=row["id"])
                projected.append(int(row["version"]))
            if projected:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"version {self.project}"))
        return projected

    async def manifest(self) -> Manifest | None:
        active = await self.active_version()
        if active is None:
            return None
        row = await self._one("get_manifest", version=active)
        if row is None:
            return None
        return rows.manifest(row, active)


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
