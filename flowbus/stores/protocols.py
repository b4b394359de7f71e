"""The contracts a storage backend fulfils: small protocols, one module per backend.

What a run hands over (a :class:`~flowbus.runtime.changes.Changeset`) and the few methods it
calls (:class:`~flowbus.runtime.changes.RunStore`) are the runtime's; a :class:`Backend` is
that and the rest: the queue, the reads of the API and the CLI, config versions and keys.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from flowbus.config.versions import ConfigVersion
from flowbus.events.instance import EventInstance
from flowbus.keys import ApiKey
from flowbus.queue import MessageState, OutgoingMessage, QueuedMessage, QueueName
from flowbus.runtime.changes import Changeset, Conflict, Record, Versioned
from flowbus.runtime.records import Run, RunStatus, Trigger


async def apply_each(
    changesets: Sequence[Changeset], apply_one: Callable[[Changeset], Awaitable[None]]
) -> list[Conflict | None]:
    """Apply changesets in order, each atomically by ``apply_one``; the shared rule of every
    backend's changeset-by-changeset path.

    A changeset that read a write of one refused before it is refused too, without being tried:
    a version number alone cannot tell its writer from another worker's.
    """
    refused: set[int] = set()
    results: list[Conflict | None] = []
    for changeset in changesets:
        conflict = refused_for_earlier(changeset, refused)
        if conflict is None:
            try:
                await apply_one(changeset)
            except Conflict as refusal:
                conflict = refusal
        if conflict is not None:
            refused.add(id(changeset))
        results.append(conflict)
    return results


def refused_for_earlier(changeset: Changeset, refused: set[int]) -> Conflict | None:
    """The refusal of a changeset that read a write of one refused before it in its batch (by
    ``id`` in ``refused``): committed, it would write on what never was."""
    if any(id(earlier) in refused for earlier in changeset.after):
        return Conflict("it read a write of an earlier run of its batch, and that write was refused")
    return None


class Manifest(NamedTuple):
    """What a config version dispatches: read by workers and tools without compiling the config."""

    version: int
    #: (source, event_type) -> trigger flows, in declared order
    routes: Mapping[tuple[str, str], tuple[str, ...]]
    #: event -> (handler, mode) in registration order
    handlers: Mapping[str, tuple[tuple[str, str], ...]]
    #: source -> the JSONPath of its event_type_from (None: it has none), for every source a message
    #: may come from; None in a manifest stored before manifests kept their sources
    sources: Mapping[str, str | None] | None = None


class DeadLetterFilter(NamedTuple):
    queue: QueueName | None = None
    #: the handler (outbound) or source (inbound) of the message
    name: str | None = None
    group_key: str | None = None


ANY_DEAD_LETTER = DeadLetterFilter()


class EventFilter(NamedTuple):
    """Which event instances a list holds; None matches any. ``since`` and ``until`` bound the
    event's time: ``since <= time < until``."""

    type: str | None = None
    source: str | None = None
    correlation_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


ANY_EVENT = EventFilter()


class RunFilter(NamedTuple):
    """Which runs a list holds; None matches any. ``source`` and ``event_type``: of the source
    message a trigger flow ran for, or of the event a handler ran for."""

    flow: str | None = None
    handler: str | None = None
    status: RunStatus | None = None
    trigger: Trigger | None = None
    config_version: int | None = None
    source: str | None = None
    event_type: str | None = None


ANY_RUN = RunFilter()


class KeyedRecord(NamedTuple):
    """A committed entity record with its key and version: an item of an entity list."""

    key: str
    record: Record
    version: int


#: field filters of an entity list: top-level field -> the text its value must have
FieldFilter = Mapping[str, str]

ANY_RECORD: FieldFilter = MappingProxyType({})

#: the most field filters one entity list takes: each is a test on every record it walks past
MAX_FIELD_FILTERS = 8


def field_text(value: Any) -> str | None:
    """The text a field filter compares a record's value with, or None: such a value never matches.

    A string as it is; an integer in decimal; ``true`` or ``false``; a decimal, a time or a date
    as it is stored (``19.90``, ``2026-11-22T10:00:00+00:00``, ``2026-11-22``). Floats, lists,
    objects, durations and null match no filter. The SQL backends compute the same text in
    their ``entity_page`` query.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.isoformat()
    return None


class RunPoint(NamedTuple):
    """A run reduced to what aggregates need (its id tells when it started)."""

    id: str
    status: RunStatus
    duration_s: float


class QueueStat(NamedTuple):
    """The open (ready or leased) or dead messages of one queue in one state."""

    queue: QueueName
    state: MessageState
    messages: int
    #: when the oldest of them was sent
    oldest: dt.datetime


class HeldStat(NamedTuple):
    """The ready messages of one queue held back for one reason: ``throttled`` (a rate limit) or
    ``waiting_for_slot`` (a concurrency limit)."""

    queue: QueueName
    held: str
    messages: int
    #: when the oldest of them was sent
    oldest: dt.datetime


class GroupStat(NamedTuple):
    """The open messages of one FIFO group, and the dead message holding the group, if one does."""

    queue: QueueName
    group_key: str
    messages: int
    oldest: dt.datetime
    blocked_by: str | None


class RetentionKind(enum.StrEnum):
    """What retention removes, each kind on its own age (see :mod:`flowbus.retention`)."""

    EVENTS = "events"  #: event instances, removed whole
    RUNS = "runs"  #: run records, removed whole
    STEPS = "steps"  #: the step runs of a run, replaced by one marker; the run itself stays
    MESSAGES = "messages"  #: finished queue messages (done or unmatched); open ones never
    DEAD_LETTERS = "dead_letters"  #: dead messages, but never one that blocks its group


class Kept(NamedTuple):
    """The rows of one kind a project keeps, and when the oldest of them was made (None: none)."""

    kind: RetentionKind
    rows: int
    oldest: dt.datetime | None


class EntityStore(Protocol):
    async def read_entity(self, entity: str, key: str) -> Versioned | None: ...

    async def list_entities(
        self, entity: str, where: FieldFilter = ANY_RECORD, *, after: str | None = None, limit: int = 100
    ) -> list[KeyedRecord]:
        """Records of ``entity`` in key order, each whose fields named in ``where`` have the
        texts it gives (:func:`field_text`). ``after``: only keys above it, the last key of the
        previous page (keyset pagination on the primary key)."""

    async def entities(self, entity: str, *, limit: int = 1000) -> dict[str, Record]:
        """Committed records of ``entity`` by key (for tests, seeds and the CLI)."""


class EventStore(Protocol):
    """Event instances (never updated or deleted), run records and the step journal."""

    async def get_event(self, event_id: str) -> EventInstance | None: ...

    async def get_events(self, event_ids: Sequence[str]) -> Sequence[EventInstance]:
        """The events of ``event_ids`` that exist, in one read (a claimed batch's events)."""

    async def event_chain(self, correlation_id: str) -> Sequence[EventInstance]: ...

    async def count_events(self) -> int: ...

    async def chain_events(self, correlation_id: str) -> int:
        """How many events the root of a chain has caused, as committed: every event with that
        ``correlation_id`` but a root event. Counted as changesets apply (:func:`caused_events`)."""

    async def list_events(
        self, where: EventFilter = ANY_EVENT, *, before: str | None = None, limit: int = 100
    ) -> list[EventInstance]:
        """Newest first: ids order by creation time. ``before``: only ids below it, the last id of
        the previous page (keyset pagination, as cheap on the thousandth page as on the first)."""

    async def get_run(self, run_id: str) -> Run | None: ...

    async def list_runs(self, where: RunFilter = ANY_RUN, *, before: str | None = None, limit: int = 100) -> list[Run]:
        """Newest first, paged like :meth:`list_events`."""

    async def run_points(self, since: dt.datetime, *, limit: int) -> list[RunPoint]:
        """The runs started at or after ``since``, newest first, at most ``limit``: a range of the
        primary key (ids order by time), as cheap with a million older runs as with none."""

    async def runs_for_event(self, event_id: str) -> Sequence[Run]: ...

    async def runs_for_message(self, message_id: str) -> Sequence[Run]: ...

    async def child_runs(self, run_id: str) -> Sequence[Run]: ...

    async def record_runs(self, runs: Sequence[Run]) -> None:
        """Keep the trace of runs that were rolled back (outside any unit of work)."""

    async def journaled_output(self, execution_key: str, step_key: str) -> tuple[bool, Any]:
        """``(True, output)`` when the step already ran to the end in an earlier attempt."""

    async def journal_step(self, execution_key: str, step_key: str, output: Any) -> None:
        """Record at once that a step with an external effect finished (write-ahead of its run)."""


class Queue(Protocol):
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Enqueue; a message whose ``dedup_id`` was seen within the window is dropped (its first id returned)."""

    async def claim(
        self, queues: Sequence[QueueName], *, limit: int, owner: str, lease_s: float
    ) -> list[QueuedMessage]:
        """Lease up to ``limit`` deliverable messages: group heads only, oldest first."""

    async def extend_leases(self, message_ids: Sequence[str], *, owner: str, lease_s: float) -> int: ...

    async def release(self, message_ids: Sequence[str], *, owner: str) -> int:
        """Give leased messages back unprocessed (no attempt counted): on shutdown."""

    async def get_message(self, message_id: str) -> QueuedMessage | None: ...

    async def queue_depth(self) -> dict[tuple[QueueName, MessageState], int]: ...

    async def queue_stats(self) -> list[QueueStat]:
        """Open and dead messages per queue and state, with the oldest one's time; read through the
        indexes of open and dead messages, so done messages (the history) cost nothing."""

    async def held_stats(self) -> list[HeldStat]:
        """Ready messages held back by flow control (flowbus.limits), per queue and reason."""

    async def group_stats(self, *, limit: int) -> list[GroupStat]:
        """FIFO groups with open messages: blocked groups first (with the dead message blocking
        each), then by their oldest open message; at most ``limit``."""

    async def dead_letters(
        self, where: DeadLetterFilter = ANY_DEAD_LETTER, *, after: str | None = None, limit: int = 100
    ) -> list[QueuedMessage]:
        """Oldest first (by id). ``after``: only ids above it, the last id of the previous page."""

    async def redrive(self, message_ids: Sequence[str], *, config_version: int | None = None) -> int:
        """Make dead messages ready again with fresh attempts (optionally on another config version)."""

    async def wait_for_work(self, timeout_s: float) -> str | None:
        """Return when new work may be there: ``"work"``, ``"version"`` (a new config version), or
        None after ``timeout_s``. Backends without notifications just wait out the timeout."""


class ScheduleStore(Protocol):
    async def advance_schedule(self, schedule: str, tick: dt.datetime, messages: Sequence[OutgoingMessage]) -> bool:
        """Fire ``tick`` of ``schedule``: move its last tick forward to ``tick`` and queue ``messages``,
        in one transaction; False, and nothing queued, when its last tick is already there or later
        (another worker fired it)."""

    async def schedule_ticks(self) -> dict[str, dt.datetime]:
        """The last tick each schedule fired (or skipped), by schedule name."""


class RateStore(Protocol):
    async def take_rate(
        self, key: str, *, now: float, interval_s: float, max_wait_s: float, not_before: float = 0.0
    ) -> float:
        """Take a turn of the rate limiter ``key`` (GCRA): seconds to wait before the turn.

        The limiter keeps one time per project and key, when its next turn is free. A turn starts at
        that time, ``now`` or ``not_before``, whichever is latest; when it starts at most
        ``max_wait_s`` after ``now`` it is taken (the time moves to its start plus ``interval_s``),
        else nothing changes and the caller comes back later. In one atomic statement, so turns are
        exact across workers and processes. Times are seconds since the epoch. ``interval_s=0``
        with ``not_before`` holds the limiter until then without taking a turn."""


class ConfigStore(Protocol):
    async def save_draft(self, text: str, *, file: str) -> None: ...

    async def get_draft(self) -> tuple[str, str] | None:
        """``(text, file)`` of the project's draft, if any."""

    async def add_version(self, version: ConfigVersion, manifest: Manifest) -> ConfigVersion:
        """Store a new immutable version (numbered next) and its outbox record, in one transaction."""

    async def versions(self) -> list[ConfigVersion]: ...

    async def get_version(self, number: int) -> ConfigVersion | None: ...

    async def active_version(self) -> int | None: ...

    async def project_versions(self) -> list[int]:
        """The dispatcher: project pending outbox records into the manifest and the active version."""

    async def manifest(self) -> Manifest | None: ...


class KeyStore(Protocol):
    """API keys of the project (hashed; see :mod:`flowbus.keys`)."""

    async def add_key(self, key: ApiKey) -> None: ...

    async def get_key(self, key_id: str) -> ApiKey | None: ...

    async def find_key(self, key_id: str) -> ApiKey | None:
        """A key by id in whichever project of this database holds it: to tell a key of another
        project (403) from no key at all (401). Only the key's own record is read."""

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: str) -> bool: ...


class RetentionStore(Protocol):
    """Removal of what is past its age, a batch at a time, on indexed time columns."""

    async def purge(self, kind: RetentionKind, before: dt.datetime, *, limit: int) -> int:
        """Remove (steps: replace by a marker) at most ``limit`` of the oldest rows of ``kind``
        made before ``before``, in one short transaction; how many. Fewer than ``limit``: no more
        is due, or the next ones are not yet past their age."""

    async def purgeable(self, kind: RetentionKind, before: dt.datetime) -> int:
        """How many rows :meth:`purge` would remove, were it called until it returned 0."""

    async def kept(self) -> list[Kept]:
        """The rows kept of every kind, and the age of the oldest."""

    async def take_sweep(self, owner: str, *, now: dt.datetime, lease_s: float) -> bool:
        """Take or extend the project's sweep lease: True for ``owner`` when nobody else holds it
        unexpired, so that one worker sweeps a project at a time, across processes."""

    async def reclaim_space(self) -> None:
        """Give some of the space freed by purges back to the file system where the database
        leaves that to its user (SQLite's incremental vacuum); elsewhere nothing to do."""


class Backend(
    EntityStore, EventStore, Queue, ScheduleStore, ConfigStore, KeyStore, RetentionStore, RateStore, Protocol
):
    """One storage backend (memory, SQLite, PostgreSQL), for one project."""

    project: str

    async def apply(self, changeset: Changeset) -> None:
        """Apply atomically; raises :class:`Conflict` (nothing applied) when a read or a lease is stale."""

    async def apply_many(self, changesets: Sequence[Changeset]) -> list[Conflict | None]:
        """Apply each changeset atomically in order, in as few commits as the backend can.

        One conflicting changeset does not stop the others; its slot holds the conflict.
        """

    async def migrate(self) -> list[int]:
        """Bring the schema up to date; returns the numbers of the migrations it applied."""

    async def close(self) -> None: ...
