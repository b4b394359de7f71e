"""The SQLite backend: the embedded default, one file, zero setup.

One connection, in WAL mode, used from the thread of the event loop that opened it. A sqlite3
call takes microseconds; a hop to a database thread costs more than that, so calls are made
directly and a unit of work is one transaction. Several processes may share the file (WAL
allows readers beside the one writer; writers queue on the lock with a busy timeout).

Every driver error is translated here: callers see :class:`StoreError` or :class:`Conflict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from flowbus.codec import decode, encode
from flowbus.config.versions import ConfigVersion
from flowbus.errors import StoreError, StoreUnavailable
from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import floor_id, new_id
from flowbus.keys import ApiKey
from flowbus.queue import (
    DEFAULT_DEDUP_WINDOW_S,
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
    KeyedRecord,
    Manifest,
    QueueStat,
    RunFilter,
    RunPoint,
    apply_each,
)
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
            found = conn.execute("SELECT DISTINCT project FROM config_versions ORDER BY project").fetchall()
        except sqlite3.OperationalError:  # not migrated yet: no projects
            return []
        return [row[0] for row in found]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SqliteBackend:
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
        self.project = project
        self.dedup_window_s = dedup_window_s
        self._conn = connect(path, synchronous=synchronous)

    async def migrate(self) -> list[int]:
        return migrate(self._conn)

    async def close(self) -> None:
        with translated_errors():
            self._conn.close()

    def _all(self, query: str, **params: Any) -> list[sqlite3.Row]:
        with translated_errors():
            return self._conn.execute(Q[query], {"project": self.project, **params}).fetchall()

    def _one(self, query: str, **params: Any) -> sqlite3.Row | None:
        with translated_errors():
            row: sqlite3.Row | None = self._conn.execute(Q[query], {"project": self.project, **params}).fetchone()
            return row

    # -- changesets ----------------------------------------------------------------------

    async def apply(self, changeset: Changeset) -> None:
        [conflict] = await self.apply_many([changeset])
        if conflict is not None:
            raise conflict

    async def apply_many(self, changesets: Sequence[Changeset]) -> list[Conflict | None]:
        if len(changesets) > 1:
            # the common case: no conflict anywhere, so one transaction without savepoints; on a
            # conflict it is rolled back whole and the batch goes again, one savepoint per changeset
            try:
                with transaction(self._conn) as conn:
                    for changeset in changesets:
                        self._write(conn, changeset)
            except Conflict:
                pass
            else:
                return [None] * len(changesets)
        with transaction(self._conn) as conn:

            async def in_savepoint(changeset: Changeset) -> None:
                conn.execute("SAVEPOINT changeset")
                try:
                    self._write(conn, changeset)
                except Conflict:
                    conn.execute("ROLLBACK TO changeset")
                    raise
                finally:
                    conn.execute("RELEASE changeset")

            return await apply_each(changesets, in_savepoint)

    def _write(self, conn: sqlite3.Connection, changeset: Changeset) -> None:
        project = self.project
        for (entity, key), write in changeset.writes.items():
            self._write_entity(conn, entity, key, write.record, write.expected_version)
        if changeset.events:
            conn.executemany(Q["insert_event"], [rows.event_row(project, e) for e in changeset.events])
            conn.executemany(Q["count_in_chain"], rows.chain_count_rows(project, changeset.events))
        if changeset.messages:
            self._send(conn, changeset.messages)
        if changeset.runs:
            conn.executemany(Q["insert_run"], [rows.run_row(project, r) for r in changeset.runs])
        for ack in changeset.acks:
            if conn.execute(Q["ack"], rows.ack_row(project, ack)).rowcount != 1:
                raise Conflict(f"the lease on message {ack.message_id} was lost")
        for retry in changeset.retries:
            if conn.execute(Q["retry"], rows.retry_row(project, retry)).rowcount != 1:
                raise Conflict(f"the lease on message {retry.message_id} was lost")

    def _write_entity(
        self, conn: sqlite3.Connection, entity: str, key: str, record: Record | None, expected: int | None
    ) -> None:
        params = {"project": self.project, "entity": entity, "key": key, "expected": expected}
        if record is None:
            if expected is None:
                conn.execute(Q["delete_entity"], params)
            elif expected == 0:
                if conn.execute(Q["entity_exists"], params).fetchone() is not None:
                    raise Conflict(f"{entity} {key!r} was created since it was read as absent")
            elif conn.execute(Q["delete_entity_at"], params).rowcount != 1:
                raise Conflict(f"{entity} {key!r} changed since it was read")
            return
        params["data"] = encode(record)
        if expected is None:
            conn.execute(Q["upsert_entity"], params)
        elif expected == 0:
            try:
                conn.execute(Q["insert_entity"], params)
            except sqlite3.IntegrityError:
                raise Conflict(f"{entity} {key!r} was created since it was read as absent") from None
        elif conn.execute(Q["update_entity"], params).rowcount != 1:
            raise Conflict(f"{entity} {key!r} changed since it was read (version {expected})")

    # -- entities ------------------------------------------------------------------------

    async def read_entity(self, entity: str, key: str) -> Versioned | None:
        row = self._one("read_entity", entity=entity, key=key)
        return None if row is None else rows.versioned(row)

    async def entities(self, entity: str, *, limit: int = 1000) -> dict[str, Record]:
        found = self._all("list_entities", entity=entity, limit=limit)
        return {row["key"]: freeze(decode(row["data"])) for row in found}

    async def list_entities(
        self, entity: str, where: FieldFilter = ANY_RECORD, *, after: str | None = None, limit: int = 100
    ) -> list[KeyedRecord]:
        found = self._all("entity_page", **rows.entity_page(entity, where, after, limit))
        return [rows.keyed_record(row) for row in found]

    # -- events, runs, journal -------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventInstance | None:
        row = self._one("get_event", id=event_id)
        return None if row is None else rows.event(row)

    async def event_chain(self, correlation_id: str) -> Sequence[EventInstance]:
        return [rows.event(row) for row in self._all("event_chain", correlation_id=correlation_id)]

    async def count_events(self) -> int:
        row = self._one("count_events")
        return int(row[0]) if row is not None else 0

    async def chain_events(self, correlation_id: str) -> int:
        row = self._one("chain_events", correlation_id=correlation_id)
        return int(row[0]) if row is not None else 0

    async def list_events(
        self, where: EventFilter = ANY_EVENT, *, before: str | None = None, limit: int = 100
    ) -> list[EventInstance]:
        return [rows.event(row) for row in self._all("list_events", **rows.event_page(where, before, limit))]

    async def list_runs(self, where: RunFilter = ANY_RUN, *, before: str | None = None, limit: int = 100) -> list[Run]:
        return [rows.run(row) for row in self._all("list_runs", **rows.run_page(where, before, limit))]

    async def get_run(self, run_id: str) -> Run | None:
        row = self._one("get_run", id=run_id)
        return None if row is None else rows.run(row)

    async def run_points(self, since: dt.datetime, *, limit: int) -> list[RunPoint]:
        found = self._all("run_points", since=floor_id(since), limit=limit)
        return [rows.run_point(r) for r in found]

    async def runs_for_event(self, event_id: str) -> Sequence[Run]:
        return [rows.run(row) for row in self._all("runs_for_event", key=event_id)]

    async def runs_for_message(self, message_id: str) -> Sequence[Run]:
        return [rows.run(row) for row in self._all("runs_for_message", key=message_id)]

    async def child_runs(self, run_id: str) -> Sequence[Run]:
        return [rows.run(row) for row in self._all("child_runs", key=run_id)]

    async def record_runs(self, runs: Sequence[Run]) -> None:
        with transaction(self._conn) as conn:
            conn.executemany(Q["insert_run"], [rows.run_row(self.project, r) for r in runs])

    async def journaled_output(self, execution_key: str, step_key: str) -> tuple[bool, Any]:
        row = self._one("journaled_output", execution_key=execution_key, step_key=step_key)
        return (False, None) if row is None else (True, freeze(decode(row["output"])))

    async def journal_step(self, execution_key: str, step_key: str, output: Any) -> None:
        with transaction(self._conn) as conn:
            params = {"project": self.project, "execution_key": execution_key, "step_key": step_key}
            conn.execute(Q["journal_step"], {**params, "output": encode(output)})

    # -- queues --------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        with transaction(self._conn) as conn:
            return self._send(conn, messages)

    def _send(self, conn: sqlite3.Connection, messages: Sequence[OutgoingMessage]) -> list[str]:
        now = _now()
        stamp = now.timestamp()
        ids = []
        for outgoing in messages:
            base = {"project": self.project, "queue": outgoing.queue}
            if outgoing.dedup_id is not None:
                seen = conn.execute(Q["find_dedup"], {**base, "dedup_id": outgoing.dedup_id, "now": stamp}).fetchone()
                if seen is not None:
                    ids.append(seen[0])
                    continue
            message_id = new_id()
            conn.execute(Q["insert_message"], rows.message_row(self.project, message_id, outgoing, now))
            if outgoing.dedup_id is not None:
                conn.execute(
                    Q["remember_dedup"],
                    {
                        **base,
                        "dedup_id": outgoing.dedup_id,
                        "message_id": message_id,
                        "expires_at": stamp + self.dedup_window_s,
                    },
                )
            ids.append(message_id)
        return ids

    async def claim(
        self, queues: Sequence[QueueName], *, limit: int, owner: str, lease_s: float
    ) -> list[QueuedMessage]:
        now = time.time()
        with transaction(self._conn) as conn:
            params = {"project": self.project, "queues": encode(list(queues)), "now": now, "limit": limit}
            seqs = [row[0] for row in conn.execute(Q["claimable"], params)]
            if not seqs:
                return []
            leased = conn.execute(Q["lease"], {"seqs": encode(seqs), "owner": owner, "until": now + lease_s}).fetchall()
        by_seq = {row["seq"]: row for row in leased}  # RETURNING gives no order; the queue's is by seq
        return [rows.message(by_seq[seq]) for seq in seqs if seq in by_seq]

    async def extend_leases(self, message_ids: Sequence[str], *, owner: str, lease_s: float) -> int:
        with transaction(self._conn) as conn:
            params = {"project": self.project, "ids": encode(list(message_ids)), "owner": owner}
            return conn.execute(Q["extend_leases"], {**params, "until": time.time() + lease_s}).rowcount

    async def release(self, message_ids: Sequence[str], *, owner: str) -> int:
        with transaction(self._conn) as conn:
            params = {"project": self.project, "ids": encode(list(message_ids)), "owner": owner}
            return conn.execute(Q["release"], params).rowcount

    async def get_message(self, message_id: str) -> QueuedMessage | None:
        row = self._one("get_message", id=message_id)
        return None if row is None else rows.message(row)

    async def queue_depth(self) -> dict[tuple[QueueName, MessageState], int]:
        return {(QueueName(r["queue"]), MessageState(r["state"])): r["n"] for r in self._all("queue_depth")}

    async def queue_stats(self) -> list[QueueStat]:
        return [rows.queue_stat(r) for r in self._all("queue_stats")]

    async def group_stats(self, *, limit: int) -> list[GroupStat]:
        return [rows.group_stat(r) for r in self._all("group_stats", limit=limit)]

    async def dead_letters(
        self, where: DeadLetterFilter = ANY_DEAD_LETTER, *, after: str | None = None, limit: int = 100
    ) -> list[QueuedMessage]:
        found = self._all("dead_letters", **rows.dead_letter_page(where, after, limit))
        return [rows.message(row) for row in found]

    async def redrive(self, message_ids: Sequence[str], *, config_version: int | None = None) -> int:
        with transaction(self._conn) as conn:
            params = {"project": self.project, "now": time.time(), "config_version": config_version}
            return sum(conn.execute(Q["redrive"], {**params, "id": i}).rowcount for i in message_ids)

    async def add_key(self, key: ApiKey) -> None:
        with transaction(self._conn) as conn:
            conn.execute(Q["insert_key"], rows.key_row(self.project, key))

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = self._one("get_key", id=key_id)
        return None if row is None else rows.api_key(row)

    async def find_key(self, key_id: str) -> ApiKey | None:
        row = self._one("find_key", id=key_id)
        return None if row is None else rows.api_key(row)

    async def list_keys(self) -> list[ApiKey]:
        return [rows.api_key(row) for row in self._all("list_keys")]

    async def revoke_key(self, key_id: str) -> bool:
        with transaction(self._conn) as conn:
            params = {"project": self.project, "id": key_id, "now": rows.iso(_now())}
            return bool(conn.execute(Q["revoke_key"], params).rowcount)

    async def wait_for_work(self, timeout_s: float) -> str | None:
        # SQLite cannot tell other processes about a commit: workers poll, with a short timeout
        await asyncio.sleep(timeout_s)
        return None

    # -- config versions -----------------------------------------------------------------

    async def save_draft(self, text: str, *, file: str) -> None:
        with transaction(self._conn) as conn:
            conn.execute(
                Q["save_draft"], {"project": self.project, "text": text, "file": file, "now": rows.iso(_now())}
            )

    async def get_draft(self) -> tuple[str, str] | None:
        row = self._one("get_draft")
        return None if row is None else (row["text"], row["file"])

    async def add_version(self, version: ConfigVersion, manifest: Manifest) -> ConfigVersion:
        with transaction(self._conn) as conn:
            number = conn.execute(Q["next_version"], {"project": self.project}).fetchone()[0]
            stored = version._replace(number=number)
            row = {**stored._asdict(), "project": self.project, "created_at": rows.iso(stored.created_at)}
            conn.execute(Q["insert_version"], row)
            conn.execute(Q["insert_manifest"], rows.manifest_row(self.project, manifest, number))
            conn.execute(Q["insert_outbox"], {"project": self.project, "version": number, "now": rows.iso(_now())})
        return stored

    async def versions(self) -> list[ConfigVersion]:
        return [rows.version(row) for row in self._all("versions")]

    async def get_version(self, number: int) -> ConfigVersion | None:
        row = self._one("get_version", number=number)
        return None if row is None else rows.version(row)

    async def active_version(self) -> int | None:
        row = self._one("active_version")
        return None if row is None else int(row[0])

    async def project_versions(self) -> list[int]:
        if self._one("pending_outbox") is None:  # the common case, without taking the write lock
            return []
        projected = []
        with transaction(self._conn) as conn:
            for row in conn.execute(Q["pending_outbox"], {"project": self.project}).fetchall():
                now = rows.iso(_now())
                conn.execute(Q["activate"], {"project": self.project, "version": row["version"], "now": now})
                conn.execute(Q["outbox_done"], {"id": row["id"], "now": now})
                projected.append(int(row["version"]))
        return projected

    async def manifest(self) -> Manifest | None:
        active = await self.active_version()
        if active is None:
            return None
        row = self._one("get_manifest", version=active)
        if row is None:
            return None
        return rows.manifest(row, active)
