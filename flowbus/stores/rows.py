"""Records to database rows and back, shared by the SQL backends.

Row builders take ``stamp``, how the backend stores a time (ISO text for SQLite, the datetime
itself for PostgreSQL); readers accept either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from flowbus.codec import decode, encode
from flowbus.config.versions import ConfigVersion
from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import MAX_ID
from flowbus.keys import ApiKey, Scope
from flowbus.limits import Candidate
from flowbus.queue import AttemptError, Debounce, MessageKind, MessageState, OutgoingMessage, QueuedMessage, QueueName
from flowbus.runtime.changes import Ack, Retry, Versioned, caused_events
from flowbus.runtime.records import Run, RunStatus, StepRun, StepStatus, Trigger
from flowbus.stores.protocols import (
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
)


class Row(Protocol):
    """A database row read by column name (sqlite3.Row, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


Stamp = Callable[[dt.datetime], Any]


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def _time(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def event_row(project: str, e: EventInstance, stamp: Stamp = iso) -> dict[str, Any]:
    return {
        "project": project, "id": e.id, "type": e.type, "version": e.version, "source": e.source,
        "time": stamp(e.time), "data": encode(e.data), "correlation_id": e.correlation_id,
        "causation_id": e.causation_id, "depth": e.depth,
    }  # fmt: skip


def chain_count_rows(project: str, events: Sequence[EventInstance]) -> list[dict[str, Any]]:
    """Parameters of the ``count_in_chain`` statement for the events of one or more changesets."""
    return [
        {"project": project, "correlation_id": correlation_id, "events": n}
        for correlation_id, n in caused_events(events).items()
    ]


def event(row: Row) -> EventInstance:
    return EventInstance(
        id=row["id"], type=row["type"], version=row["version"], source=row["source"],
        time=_time(row["time"]), data=freeze(decode(row["data"])),
        correlation_id=row["correlation_id"], causation_id=row["causation_id"], depth=row["depth"],
    )  # fmt: skip


def run_row(project: str, r: Run, stamp: Stamp = iso) -> dict[str, Any]:
    return {
        "project": project, "id": r.id, "flow": r.flow, "trigger": r.trigger, "status": r.status,
        "started_at": stamp(r.started_at), "duration_s": r.duration_s, "inputs": encode(r.inputs),
        "outputs": encode(r.outputs) if r.outputs else "{}", "steps": encode(r.steps), "error": r.error,
        "handler": r.handler, "event_id": r.event_id, "message_id": r.message_id, "parent_run_id": r.parent_run_id,
        "config_version": r.config_version, "attempt": r.attempt,
    }  # fmt: skip


def run(row: Row) -> Run:
    steps = tuple(
        StepRun(key, step_id, action, StepStatus(status), freeze(inp), freeze(out), error, duration)
        for key, step_id, action, status, inp, out, error, duration in decode(row["steps"])
    )
    return Run(
        id=row["id"], flow=row["flow"], trigger=Trigger(row["trigger"]), status=RunStatus(row["status"]),
        started_at=_time(row["started_at"]), duration_s=row["duration_s"],
        inputs=freeze(decode(row["inputs"])), outputs=freeze(decode(row["outputs"])), steps=steps,
        error=row["error"], handler=row["handler"], event_id=row["event_id"], message_id=row["message_id"],
        parent_run_id=row["parent_run_id"], config_version=row["config_version"], attempt=row["attempt"],
    )  # fmt: skip


def run_point(row: Row) -> RunPoint:
    return RunPoint(row["id"], RunStatus(row["status"]), row["duration_s"])


def queue_stat(row: Row) -> QueueStat:
    return QueueStat(QueueName(row["queue"]), MessageState(row["state"]), row["n"], _time(row["oldest"]))


def held_stat(row: Row) -> HeldStat:
    return HeldStat(QueueName(row["queue"]), row["held"], row["n"], _time(row["oldest"]))


def candidate(row: Row) -> Candidate:
    """A claim's candidate with its limits (flowbus.limits.admit)."""
    return Candidate(
        row["seq"], row["concurrency_key"], row["concurrency_limit"], row["rate_key"], row["rate_interval_s"]
    )


def group_stat(row: Row) -> GroupStat:
    return GroupStat(QueueName(row["queue"]), row["group_key"], row["n"], _time(row["oldest"]), row["blocked_by"])


def event_page(where: EventFilter, before: str | None, limit: int, stamp: Stamp = iso) -> dict[str, Any]:
    """Parameters of the ``list_events`` query. The first page starts below :data:`MAX_ID`, so the
    query always has its ``id <`` bound and walks the primary key from there."""
    return {
        "type": where.type, "source": where.source, "correlation_id": where.correlation_id,
        "since": _utc(where.since, stamp), "until": _utc(where.until, stamp),
        "before": before or MAX_ID, "limit": limit,
    }  # fmt: skip


def run_page(where: RunFilter, before: str | None, limit: int) -> dict[str, Any]:
    """Parameters of the ``list_runs`` query (see :func:`event_page`)."""
    return {**where._asdict(), "before": before or MAX_ID, "limit": limit}


def dead_letter_page(where: DeadLetterFilter, after: str | None, limit: int) -> dict[str, Any]:
    """Parameters of the ``dead_letters`` query: oldest first, so the first page starts above
    the empty string, which sorts before every id."""
    return {**where._asdict(), "after": after or "", "limit": limit}


def _utc(value: dt.datetime | None, stamp: Stamp) -> Any:
    # SQLite compares times as ISO text: every stored time is UTC, so a bound must be too
    return None if value is None else stamp(value.astimezone(dt.UTC))


def message_row(
    project: str, message_id: str, outgoing: OutgoingMessage, now: dt.datetime, stamp: Stamp = iso
) -> dict[str, Any]:
    """The row of a new message: ready now, or scheduled until its not-before time
    (``available_at`` is seconds since the epoch)."""
    delayed = outgoing.not_before is not None and outgoing.not_before > now
    return {
        "project": project, "id": message_id, "queue": outgoing.queue, "kind": outgoing.kind,
        "body": encode(outgoing.body), "group_key": outgoing.group_key, "dedup_id": outgoing.dedup_id,
        "config_version": outgoing.config_version, "created_at": stamp(now),
        "state": MessageState.SCHEDULED if delayed else MessageState.READY,
        "available_at": (outgoing.not_before or now).timestamp(), "trace_context": outgoing.trace_context,
        "priority": outgoing.priority, "concurrency_key": outgoing.concurrency_key,
        "concurrency_limit": outgoing.concurrency_limit, "rate_key": outgoing.rate_key,
        "rate_interval_s": outgoing.rate_interval_s,
    }  # fmt: skip


def debounce_row(
    project: str, message_id: str, outgoing: OutgoingMessage, debounce: Debounce, now: dt.datetime, stamp: Stamp = iso
) -> dict[str, Any]:
    """Parameters of the ``debounce_message`` statement: a debounced message, scheduled its period
    ahead, and the deadline of a burst it starts (None: no max_wait)."""
    start = now.timestamp()
    deadline = start + debounce.max_wait_s if debounce.max_wait_s is not None else None
    return {
        "project": project, "id": message_id, "queue": outgoing.queue, "kind": outgoing.kind,
        "body": encode(outgoing.body), "group_key": outgoing.group_key, "config_version": outgoing.config_version,
        "created_at": stamp(now), "available_at": start + debounce.period_s, "trace_context": outgoing.trace_context,
        "debounce_key": debounce.key, "debounce_deadline": deadline, "priority": outgoing.priority,
    }  # fmt: skip


def ack_row(project: str, ack: Ack) -> dict[str, Any]:
    """Parameters of the ``ack`` statement."""
    return {"project": project, "id": ack.message_id, "owner": ack.owner, "state": ack.state}


def retry_row(project: str, retry: Retry) -> dict[str, Any]:
    """Parameters of the ``retry`` statement."""
    return {
        "project": project, "id": retry.message_id, "owner": retry.owner,
        "state": MessageState.DEAD if retry.dead else MessageState.READY, "error": encode(retry.error._asdict()),
        "available_at": retry.available_at.timestamp(), "blocking": retry.blocking,
    }  # fmt: skip


def defer_row(project: str, retry: Retry) -> dict[str, Any]:
    """Parameters of the ``defer`` statement: given back until ``available_at``, no attempt spent."""
    return {
        "project": project, "id": retry.message_id, "owner": retry.owner,
        "available_at": retry.available_at.timestamp(), "counted": retry.counted,
    }  # fmt: skip


def versioned(row: Row) -> Versioned:
    """An entity record with its version."""
    return Versioned(freeze(decode(row["data"])), row["version"])


def entity_page(entity: str, where: FieldFilter, after: str | None, limit: int) -> dict[str, Any]:
    """Parameters of the ``entity_page`` query: the first page starts above the empty string,
    which sorts before every key."""
    return {"entity": entity, "where": encode(dict(where)), "after": after or "", "limit": limit}


def keyed_record(row: Row) -> KeyedRecord:
    return KeyedRecord(row["key"], freeze(decode(row["data"])), row["version"])


#: the key of the manifest's sources in its handlers column: no event can have this name, and
#: readers of the column that predate it see pairs under an event nothing publishes
SOURCES_KEY = "$sources"


def manifest_row(project: str, manifest: Manifest, version: int) -> dict[str, Any]:
    handlers: dict[str, Any] = {e: [list(h) for h in hs] for e, hs in manifest.handlers.items()}
    if manifest.sources is not None:
        handlers[SOURCES_KEY] = [[name, path] for name, path in manifest.sources.items()]
    return {
        "project": project,
        "version": version,
        "routes": encode([[s, t, list(f)] for (s, t), f in manifest.routes.items()]),
        "handlers": encode(handlers),
    }


def manifest(row: Row, version: int) -> Manifest:
    routes = {(s, t): tuple(f) for s, t, f in decode(row["routes"])}
    stored = decode(row["handlers"])
    pairs = stored.pop(SOURCES_KEY, None)
    sources = {name: path for name, path in pairs} if pairs is not None else None
    handlers = {e: tuple((h, m) for h, m in hs) for e, hs in stored.items()}
    return Manifest(version=version, routes=routes, handlers=handlers, sources=sources)


#: enum members by value: a dict look-up, where calling the enum class costs several times more
#: (every claimed message is read through these)
_QUEUES = {member.value: member for member in QueueName}
_KINDS = {member.value: member for member in MessageKind}
_STATES = {member.value: member for member in MessageState}


def message(row: Row) -> QueuedMessage:
    stored_errors = row["errors"]
    # most messages have never failed: their errors are the empty list, not worth decoding
    errors = tuple(AttemptError(**e) for e in decode(stored_errors)) if stored_errors != "[]" else ()
    expires = row["lease_expires_at"]
    # positional, in QueuedMessage's field order: every claimed message is read through here
    return QueuedMessage(
        row["id"], _QUEUES[row["queue"]], _KINDS[row["kind"]], freeze(decode(row["body"])), row["group_key"],
        row["dedup_id"], _STATES[row["state"]], row["attempts"], row["config_version"], _time(row["created_at"]),
        dt.datetime.fromtimestamp(row["available_at"], dt.UTC), row["lease_owner"],
        dt.datetime.fromtimestamp(expires, dt.UTC) if expires is not None else None, errors,
        bool(row["blocking"]), row["trace_context"], row["debounce_key"], row["debounced"], row["deferrals"],
        bool(row["throttled"]), row["concurrency_key"], row["concurrency_limit"], row["rate_key"],
        row["rate_interval_s"], row["priority"], row["held"],
    )  # fmt: skip


def version(row: Row) -> ConfigVersion:
    return ConfigVersion(
        number=row["number"], text=row["text"], file=row["file"], content_hash=row["content_hash"],
        created_at=_time(row["created_at"]), summary=row["summary"],
    )  # fmt: skip


def key_row(project: str, key: ApiKey, stamp: Stamp = iso) -> dict[str, Any]:
    return {
        "project": project, "id": key.id, "name": key.name, "scopes": ",".join(key.scopes),
        "secret_hash": key.secret_hash, "created_at": stamp(key.created_at),
    }  # fmt: skip


def api_key(row: Row) -> ApiKey:
    revoked = row["revoked_at"]
    return ApiKey(
        id=row["id"], project=row["project"], name=row["name"],
        scopes=tuple(Scope(s) for s in row["scopes"].split(",") if s), secret_hash=row["secret_hash"],
        created_at=_time(row["created_at"]), revoked_at=_time(revoked) if revoked is not None else None,
    )  # fmt: skip
