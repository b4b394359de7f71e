"""The store contract over SQL, written once for every dialect.

:class:`SqlBackend` holds each store operation a single time: the named query it runs (the SQL
itself lives in ``sql/<dialect>/queries.sql``, under the same names in every dialect) and how
its rows become records (:mod:`flowbus.stores.rows`). What differs between databases sits
behind a small :class:`Connector`: connecting, transactions, running a named query, error
translation, the claim, and how workers hear of new work. ``sqlite.py`` and ``postgres.py``
are those connectors.

The connector interface is async; the SQLite connector never suspends, so a SQLite
transaction still runs from BEGIN to COMMIT without another task slipping in between.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import operator
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from flowbus.codec import decode, encode
from flowbus.config.versions import ConfigVersion
from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import floor_id, new_id
from flowbus.keys import ApiKey
from flowbus.queue import (
    DEFAULT_DEDUP_WINDOW_S,
    DEFAULT_PRIORITY,
    MessageState,
    OutgoingMessage,
    QueuedMessage,
    QueueName,
)
from flowbus.runtime.changes import Changeset, Conflict, Record, Versioned
from flowbus.runtime.records import Run
from flowbus.stores import rows
from flowbus.stores.protocols import (
    ANY_DEAD_LETTER,
    ANY_EVENT,
    ANY_RECORD,
    ANY_RUN,
    DeadLetterFilter,
    EventFilter,
    FieldFilter,
    GroupStat,
    HeldStat,
    KeyedRecord,
    Manifest,
    QueueStat,
    RunFilter,
    RunPoint,
    apply_each,
)
from flowbus.stores.sql_retention import SqlRetention

#: the parameters of a named query, by the names its SQL uses
Params = Mapping[str, Any]


class Transaction(Protocol):
    """Named queries inside one open transaction; driver errors leave it as flowbus errors."""

    async def execute(self, query: str, params: Params) -> int:
        """Run a statement; the number of rows it changed."""

    async def execute_many(self, query: str, params: Sequence[Params]) -> int:
        """Run a statement once per parameter set, in as few round trips as the driver can;
        the rows changed, all runs together."""

    async def write_many(self, query: str, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set, wanting no answer back: a pipelining driver
        sends it with the next statement that must answer, or with the commit. Its error, if
        any, comes from that later call; use it where any error fails the whole transaction."""

    async def fetch_one(self, query: str, params: Params) -> rows.Row | None: ...

    async def fetch_all(self, query: str, params: Params) -> Sequence[rows.Row]: ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an exception out of it undoes its statements, and only them."""

    async def announce(self, reason: str) -> None:
        """Tell waiting workers, once this transaction commits, that ``reason`` (``work``,
        ``version``) happened; a no-op where nobody can be told. Wants no answer back."""


class Connector(Protocol):
    """One database, as the SQL backend needs it; see the module's docstring."""

    #: whether writers lock what they write themselves, in one sorted order, before writing
    #: (row locks, PostgreSQL), rather than holding a lock on the whole database (SQLite)
    locks_rows: bool

    def stamp(self, value: dt.datetime) -> Any:
        """``value`` as the dialect stores a time (ISO text, or the datetime itself)."""

    def array(self, values: Sequence[Any]) -> Any:
        """``values`` as one parameter that the dialect's queries read as a list."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def fetch_all(self, query: str, params: Params) -> Sequence[rows.Row]:
        """The rows of a query run on its own, outside any transaction."""

    async def claim(self, params: Params) -> Sequence[rows.Row]:
        """Lease the deliverable messages the ``claim`` parameters select; their rows."""

    async def wait_for_work(self, timeout_s: float) -> str | None: ...

    async def reclaim_space(self) -> None:
        """Give space freed by deletes back to the file system, where the database leaves that
        to its user (SQLite); a no-op where it does not (PostgreSQL: autovacuum)."""

    async def migrate(self) -> list[int]: ...

    async def close(self) -> None: ...


def _burst_lock(project: str, queue: str, key: str) -> int:
    """The advisory lock number of a debounce burst: a signed 64-bit digest of where it is."""
    digest = hashlib.blake2b(f"{project}\0{queue}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_SEQ = operator.itemgetter("seq")


def _higher_first(row: rows.Row) -> int:
    return -int(row["priority"])


class SqlBackend(SqlRetention):
    """flowbus's stores in one SQL database, for one project."""

    connector: Connector

    def __init__(self, connector: Connector, project: str, *, dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S) -> None:
        self.connector = connector
        self.project = project
        self.dedup_window_s = dedup_window_s
        self._stamp = connector.stamp

    async def migrate(self) -> list[int]:
        return await self.connector.migrate()

    async def close(self) -> None:
        await self.connector.close()

    async def _all(self, query: str, **params: Any) -> Sequence[rows.Row]:
        return await self.connector.fetch_all(query, {"project": self.project, **params})

    async def _one(self, query: str, **params: Any) -> rows.Row | None:
        found = await self._all(query, **params)
        return found[0] if found else None

    async def _write_one(self, query: str, **params: Any) -> int:
        """Run one statement in a transaction of its own; the rows it changed."""
        async with self.connector.transaction() as tx:
            return await tx.execute(query, {"project": self.project, **params})

    # -- changesets ----------------------------------------------------------------------

    async def apply(self, changeset: Changeset) -> None:
        [conflict] = await self.apply_many([changeset])
        if conflict is not None:
            raise conflict

    async def apply_many(self, changesets: Sequence[Changeset]) -> list[Conflict | None]:
        if len(changesets) == 1:
            # a refusal rolls the whole transaction back, which is all a savepoint would undo:
            # one changeset (a publish, a run) is one transaction, and pipelines whole
            try:
                async with self.connector.transaction() as tx:
                    await self._lock_rows(tx, changesets)
                    await self._write(tx, changesets[0])
                    await self._announce_work(tx, changesets)
            except Conflict as refusal:
                return [refusal]
            return [None]
        if changesets:
            # the common case: no conflict anywhere, so one transaction without savepoints; on a
            # conflict it is rolled back whole and the batch goes again, one savepoint per changeset
            try:
                async with self.connector.transaction() as tx:
                    await self._lock_rows(tx, changesets)
                    await self._write_batch(tx, changesets)
                    await self._announce_work(tx, changesets)
            except Conflict:
                pass
            else:
                return [None] * len(changesets)
        async with self.connector.transaction() as tx:
            # the locks heard out before the first savepoint: a lock that fails (a deadlock) fails
            # the whole batch, not the changeset whose savepoint would have met the error
            await self._lock_rows(tx, changesets, wait=True)

            async def in_savepoint(changeset: Changeset) -> None:
                async with tx.savepoint():
                    await self._write(tx, changeset)

            results = await apply_each(changesets, in_savepoint)
            await self._announce_work(tx, [c for c, r in zip(changesets, results, strict=True) if r is None])
        return results

    async def _lock_rows(self, tx: Transaction, changesets: Sequence[Changeset], *, wait: bool = False) -> None:
        """Where writers lock rows, lock the existing entity rows the changesets write, and the
        chain counters they raise, each in one sorted order; with ``wait``, wait until they are
        taken (else they go with the next statement that waits).

        Two workers whose batches write the same rows in different orders would otherwise
        deadlock; taking every lock up front, sorted, makes them queue instead. A counter is
        locked by adding 0 to it (its row made if it is new).
        """
        if not self.connector.locks_rows:
            return
        locks: list[tuple[str, Sequence[Params]]] = []
        addresses = sorted({address for c in changesets for address in c.writes})
        if addresses:
            entities, keys = [a[0] for a in addresses], [a[1] for a in addresses]
            locks.append(("lock_entities", [{"project": self.project, "entities": entities, "keys": keys}]))
        counted = rows.chain_count_rows(self.project, [e for c in changesets for e in c.events])
        roots = sorted({row["correlation_id"] for row in counted})
        if roots:
            zeros = [{"project": self.project, "correlation_id": r, "events": 0} for r in roots]
            locks.append(("count_in_chain", zeros))
        bursts = self._burst_locks([m for c in changesets for m in c.messages])
        if bursts:
            locks.append(("lock_bursts", bursts))
        waited = locks.pop() if wait and locks else None
        for query, params in locks:
            await tx.write_many(query, params)
        if waited is not None:
            await tx.execute_many(*waited)  # sent last: its answer comes once all before it are done

    def _burst_locks(self, messages: Sequence[OutgoingMessage]) -> list[Params]:
        """The advisory locks (``lock_bursts``) of the debounce bursts ``messages`` fold into, where
        writers lock rows: one 64-bit number per burst (project, queue and key hashed), sorted.

        Two transactions that fold events of two keys in opposite orders would otherwise each
        hold one burst's row and wait for the other's (PostgreSQL then refuses one, after its
        deadlock timeout); taking the bursts' locks first, in one order, makes them queue.
        The messages themselves keep their order. A transaction that folds into one burst
        takes none: holding no other burst's row, it is never part of such a cycle, and the
        common publish (one debounced handler) sends no statement more."""
        if not self.connector.locks_rows:
            return []
        keys = {_burst_lock(self.project, m.queue, m.debounce.key) for m in messages if m.debounce is not None}
        return [{"keys": self.connector.array(sorted(keys))}] if len(keys) > 1 else []

    async def _lock_bursts(self, tx: Transaction, messages: Sequence[OutgoingMessage]) -> None:
        """Take :meth:`_burst_locks` (with the next statement that waits)."""
        bursts = self._burst_locks(messages)
        if bursts:
            await tx.write_many("lock_bursts", bursts)

    async def _announce_work(self, tx: Transaction, changesets: Sequence[Changeset]) -> None:
        if any(c.messages or c.retries for c in changesets):
            await tx.announce("work")

    async def _write_batch(self, tx: Transaction, changesets: Sequence[Changeset]) -> None:
        """Write a whole batch with one ``execute_many`` per kind of statement: a handful of
        round trips per batch instead of several per changeset.

        Changesets keep their order: the collected ones are written before a changeset of a
        rarer shape goes the one-by-one path, so that a later blind write of a key lands after
        an earlier one, as committing one by one would have it. Any check that does not hold (a
        version, a lease, an insert that found a row) raises :class:`Conflict`; the caller then
        rolls back and goes changeset by changeset.
        """
        collected: list[Changeset] = []
        for changeset in changesets:
            if changeset.messages or changeset.retries or any(w.record is None for w in changeset.writes.values()):
                await self._write_collected(tx, collected)
                collected = []
                await self._write(tx, changeset)  # the rarer shapes keep the one-by-one path
            else:
                collected.append(changeset)
        await self._write_collected(tx, collected)

    async def _write_collected(self, tx: Transaction, changesets: Sequence[Changeset]) -> None:
        """Changesets of entity writes, events, runs and acks, one ``execute_many`` per kind."""
        if not changesets:
            return
        project, stamp = self.project, self._stamp
        inserts: list[Params] = []
        upserts: list[Params] = []
        updates: list[Params] = []
        for changeset in changesets:
            for (entity, key), write in changeset.writes.items():
                row = {"project": project, "entity": entity, "key": key, "data": encode(write.record)}
                if write.expected_version is None:
                    upserts.append(row)
                elif write.expected_version == 0:
                    inserts.append(row)
                else:
                    updates.append({**row, "expected": write.expected_version})
        events = [e for c in changesets for e in c.events]
        for query, params, expect_all in (
            ("insert_entity", inserts, True),
            ("upsert_entity", upserts, False),
            ("update_entity", updates, True),
            ("insert_event", [rows.event_row(project, e, stamp) for e in events], False),
            ("count_in_chain", rows.chain_count_rows(project, events), False),
            ("insert_run", [rows.run_row(project, r, stamp) for c in changesets for r in c.runs], False),
            ("ack", [rows.ack_row(project, a) for c in changesets for a in c.acks], True),
        ):
            if not params:
                continue
            if not expect_all:
                await tx.write_many(query, params)
                continue
            changed = await tx.execute_many(query, params)
            if changed != len(params):
                raise Conflict(f"a batch check did not hold ({query}: {changed} of {len(params)} rows)")

    async def _write(self, tx: Transaction, changeset: Changeset) -> None:
        project, stamp = self.project, self._stamp
        for (entity, key), write in changeset.writes.items():
            await self._write_entity(tx, entity, key, write.record, write.expected_version)
        if changeset.events:
            await tx.write_many("insert_event", [rows.event_row(project, e, stamp) for e in changeset.events])
            await tx.write_many("count_in_chain", rows.chain_count_rows(project, changeset.events))
        if changeset.runs:
            await tx.write_many("insert_run", [rows.run_row(project, r, stamp) for r in changeset.runs])
        if changeset.messages:
            await self._send(tx, changeset.messages)
        for ack in changeset.acks:
            if await tx.execute("ack", rows.ack_row(project, ack)) != 1:
                raise Conflict(f"the lease on message {ack.message_id} was lost")
        for retry in changeset.retries:
            query, params = (
                ("defer", rows.defer_row(project, retry))
                if retry.deferred
                else ("retry", rows.retry_row(project, retry))
            )
            if await tx.execute(query, params) != 1:
                raise Conflict(f"the lease on message {retry.message_id} was lost")

    async def _write_entity(
        self, tx: Transaction, entity: str, key: str, record: Record | None, expected: int | None
    ) -> None:
        params: dict[str, Any] = {"project": self.project, "entity": entity, "key": key, "expected": expected}
        if record is None:
            if expected is None:
                await tx.write_many("delete_entity", [params])
            elif expected == 0:
                if await tx.fetch_one("entity_exists", params) is not None:
                    raise Conflict(f"{entity} {key!r} was created since it was read as absent")
            elif await tx.execute("delete_entity_at", params) != 1:
                raise Conflict(f"{entity} {key!r} changed since it was read")
            return
        params["data"] = encode(record)
        if expected is None:
            await tx.write_many("upsert_entity", [params])
        elif expected == 0:
            if await tx.execute("insert_entity", params) != 1:
                raise Conflict(f"{entity} {key!r} was created since it was read as absent")
        elif await tx.execute("update_entity", params) != 1:
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

    async def get_events(self, event_ids: Sequence[str]) -> Sequence[EventInstance]:
        if not event_ids:
            return []
        return [rows.event(row) for row in await self._all("get_events", ids=self.connector.array(event_ids))]

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
        found = await self._all("list_events", **rows.event_page(where, before, limit, self._stamp))
        return [rows.event(row) for row in found]

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
        async with self.connector.transaction() as tx:
            await tx.write_many("insert_run", [rows.run_row(self.project, r, self._stamp) for r in runs])

    async def journaled_output(self, execution_key: str, step_key: str) -> tuple[bool, Any]:
        row = await self._one("journaled_output", execution_key=execution_key, step_key=step_key)
        return (False, None) if row is None else (True, freeze(decode(row["output"])))

    async def journal_step(self, execution_key: str, step_key: str, output: Any) -> None:
        await self._write_one("journal_step", execution_key=execution_key, step_key=step_key, output=encode(output))

    # -- queues --------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        async with self.connector.transaction() as tx:
            await self._lock_bursts(tx, messages)
            ids = await self._send(tx, messages)
            await tx.announce("work")
            if any(m.dedup_id is not None and m.debounce is None for m in messages):
                ids = await self._deduplicated(tx, messages, ids)
            if any(m.debounce is not None for m in messages):
                ids = await self._debounced(tx, messages, ids)
        return ids

    async def _send(self, tx: Transaction, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Queue ``messages`` in their order, each under a new id; the ids.

        Two statements for any number of messages, neither read back: every de-duplication id
        is remembered first (for its message, unless it still stands for an earlier one), then
        each message is inserted unless its de-duplication id stands for another. So a batch,
        dedup included, costs a pipelining driver no round trip of its own. A debounced message
        goes by a statement of its own, which folds it into its burst's message (its id is then
        the burst's: see :meth:`send`).
        """
        now = _now()
        expires_at = now.timestamp() + self.dedup_window_s
        ids = [new_id() for _ in messages]
        remembered = [
            {"project": self.project, "queue": m.queue, "dedup_id": m.dedup_id, "message_id": message_id,
             "expires_at": expires_at, "now": now.timestamp()}
            for m, message_id in zip(messages, ids, strict=True) if m.dedup_id is not None and m.debounce is None
        ]  # fmt: skip
        if remembered:
            await tx.write_many("remember_dedup", remembered)
        inserted = [
            rows.message_row(self.project, i, m, now, self._stamp)
            for m, i in zip(messages, ids, strict=True) if m.debounce is None
        ]  # fmt: skip
        if inserted:
            await tx.write_many("insert_message", inserted)
        debounced = [
            rows.debounce_row(self.project, i, m, m.debounce, now, self._stamp)
            for m, i in zip(messages, ids, strict=True) if m.debounce is not None
        ]  # fmt: skip
        if debounced:
            # each folds into the scheduled message of its burst, if there is one: see queue.Debounce
            await tx.write_many("debounce_message", debounced)
        return ids

    async def _deduplicated(self, tx: Transaction, messages: Sequence[OutgoingMessage], ids: list[str]) -> list[str]:
        """``ids`` with each duplicate's replaced by the id of the message its dedup id stands for."""
        deduplicated = [m for m in messages if m.dedup_id is not None]
        array = self.connector.array
        found = await tx.fetch_all("dedup_messages", {
            "project": self.project, "queues": array(sorted({str(m.queue) for m in deduplicated})),
            "dedup_ids": array(sorted({m.dedup_id for m in deduplicated})),
        })  # fmt: skip
        standing = {(row["queue"], row["dedup_id"]): row["message_id"] for row in found}
        return [
            i if m.dedup_id is None else standing[str(m.queue), m.dedup_id] for m, i in zip(messages, ids, strict=True)
        ]

    async def _debounced(self, tx: Transaction, messages: Sequence[OutgoingMessage], ids: list[str]) -> list[str]:
        """``ids`` with each debounced message's replaced by the id of its burst's message (its own
        when it started the burst)."""
        bursts = {(str(m.queue), m.debounce.key) for m in messages if m.debounce is not None}
        array = self.connector.array
        found = await tx.fetch_all("debounced_messages", {
            "project": self.project, "queues": array(sorted({queue for queue, _ in bursts})),
            "keys": array(sorted({key for _, key in bursts})),
        })  # fmt: skip
        standing = {(row["queue"], row["debounce_key"]): row["id"] for row in found}
        return [
            i if m.debounce is None else standing.get((str(m.queue), m.debounce.key), i)
            for m, i in zip(messages, ids, strict=True)
        ]

    async def claim(
        self, queues: Sequence[QueueName], *, limit: int, owner: str, lease_s: float
    ) -> list[QueuedMessage]:
        now = time.time()
        params = {"project": self.project, "queues": self.connector.array([str(q) for q in queues]), "now": now}
        found = await self.connector.claim({**params, "limit": limit, "owner": owner, "until": now + lease_s})
        ordered = sorted(found, key=_SEQ)  # the queue's order
        if any(row["priority"] != DEFAULT_PRIORITY for row in ordered):
            ordered.sort(key=_higher_first)  # by priority, then the queue's order (a stable sort)
        return [rows.message(row) for row in ordered]

    async def advance_schedule(self, schedule: str, tick: dt.datetime, messages: Sequence[OutgoingMessage]) -> bool:
        params = {"project": self.project, "schedule": schedule, "tick": tick.timestamp()}
        async with self.connector.transaction() as tx:
            if await tx.fetch_one("advance_schedule", params) is None:
                return False
            if messages:
                await self._lock_bursts(tx, messages)
                await self._send(tx, messages)
                await tx.announce("work")
        return True

    async def take_rate(
        self, key: str, *, now: float, interval_s: float, max_wait_s: float, not_before: float = 0.0
    ) -> float:
        params = {"key": key, "now": now, "interval": interval_s, "max_wait": max_wait_s, "not_before": not_before}
        async with self.connector.transaction() as tx:
            taken = await tx.fetch_one("take_rate", {"project": self.project, **params})
            if taken is not None:
                return max(0.0, float(taken["tat"]) - interval_s - now)
            found = await tx.fetch_one("rate_time", {"project": self.project, "key": key})
        free = float(found["tat"]) if found is not None else now
        return max(free, now, not_before) - now

    async def schedule_ticks(self) -> dict[str, dt.datetime]:
        found = await self._all("schedule_ticks", project=self.project)
        return {row["schedule"]: dt.datetime.fromtimestamp(row["tick"], dt.UTC) for row in found}

    async def extend_leases(self, message_ids: Sequence[str], *, owner: str, lease_s: float) -> int:
        ids = self.connector.array(message_ids)
        return await self._write_one("extend_leases", ids=ids, owner=owner, until=time.time() + lease_s)

    async def release(self, message_ids: Sequence[str], *, owner: str) -> int:
        return await self._write_one("release", ids=self.connector.array(message_ids), owner=owner)

    async def get_message(self, message_id: str) -> QueuedMessage | None:
        row = await self._one("get_message", id=message_id, now=time.time())
        return None if row is None else rows.message(row)._replace(held=row["held_now"])

    async def held_stats(self) -> list[HeldStat]:
        return [rows.held_stat(r) for r in await self._all("held_stats", now=time.time())]

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
        async with self.connector.transaction() as tx:
            params = {"project": self.project, "now": time.time(), "config_version": config_version}
            count = 0
            for message_id in message_ids:
                count += await tx.execute("redrive", {**params, "id": message_id})
            if count:
                await tx.announce("work")
        return count

    async def wait_for_work(self, timeout_s: float) -> str | None:
        return await self.connector.wait_for_work(timeout_s)

    # -- API keys ------------------------------------------------------------------------

    async def add_key(self, key: ApiKey) -> None:
        async with self.connector.transaction() as tx:
            await tx.execute("insert_key", rows.key_row(self.project, key, self._stamp))

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._one("get_key", id=key_id)
        return None if row is None else rows.api_key(row)

    async def find_key(self, key_id: str) -> ApiKey | None:
        row = await self._one("find_key", id=key_id)
        return None if row is None else rows.api_key(row)

    async def list_keys(self) -> list[ApiKey]:
        return [rows.api_key(row) for row in await self._all("list_keys")]

    async def revoke_key(self, key_id: str) -> bool:
        return bool(await self._write_one("revoke_key", id=key_id, now=self._stamp(_now())))

    # -- config versions -----------------------------------------------------------------

    async def save_draft(self, text: str, *, file: str) -> None:
        await self._write_one("save_draft", text=text, file=file, now=self._stamp(_now()))

    async def get_draft(self) -> tuple[str, str] | None:
        row = await self._one("get_draft")
        return None if row is None else (row["text"], row["file"])

    async def add_version(self, version: ConfigVersion, manifest: Manifest) -> ConfigVersion:
        project, now = self.project, self._stamp(_now())
        async with self.connector.transaction() as tx:
            if self.connector.locks_rows:
                await tx.execute("lock_versions", {"project": project})  # one publisher numbers at a time
            found = await tx.fetch_one("next_version", {"project": project})  # coalesce(max) + 1: one row
            number = int(found["number"]) if found is not None else 1
            stored = version._replace(number=number)
            await tx.execute(
                "insert_version", {**stored._asdict(), "project": project, "created_at": self._stamp(stored.created_at)}
            )
            await tx.execute("insert_manifest", rows.manifest_row(project, manifest, number))
            await tx.execute("insert_outbox", {"project": project, "version": number, "now": now})
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
        if await self._one("pending_outbox_peek") is None:  # the common case, without taking a lock
            return []
        projected = []
        async with self.connector.transaction() as tx:
            for row in await tx.fetch_all("pending_outbox", {"project": self.project}):
                now = self._stamp(_now())
                await tx.execute("activate", {"project": self.project, "version": row["version"], "now": now})
                await tx.execute("outbox_done", {"id": row["id"], "now": now})
                projected.append(int(row["version"]))
            if projected:
                await tx.announce("version")
        return projected

    async def manifest(self) -> Manifest | None:
        active = await self.active_version()
        if active is None:
            return None
        row = await self._one("get_manifest", version=active)
        return None if row is None else rows.manifest(row, active)
