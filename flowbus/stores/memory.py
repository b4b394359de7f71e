"""The in-memory backend: every store in dicts, in this process, gone at exit.

It keeps the whole contract (atomic changesets with version checks, FIFO groups, leases,
de-duplication, dead letters, config versions), which makes it the backend of ``flowbus try``
and of users' own tests (see :mod:`flowbus.testing`). The same contract suite runs on it,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from flowbus.config.versions import ConfigVersion
from flowbus.events.instance import EventInstance
from flowbus.ids import floor_id, new_id
from flowbus.keys import ApiKey
from flowbus.limits import Candidate, admit
from flowbus.queue import (
    DEFAULT_DEDUP_WINDOW_S,
    DEFAULT_PRIORITY,
    THROTTLED,
    WAITING_FOR_SLOT,
    Debounce,
    MessageKind,
    MessageState,
    OutgoingMessage,
    QueuedMessage,
    QueueName,
)
from flowbus.runtime.changes import Ack, Changeset, Conflict, Record, Retry, Versioned, caused_events
from flowbus.runtime.records import Run
from flowbus.stores.memory_index import IdIndex
from flowbus.stores.memory_retention import MemoryRetention
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
    field_text,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _EntityTable(NamedTuple):
    """One entity's committed records and their versions, by key.

    Two dicts rather than a :class:`Versioned` pair a record: a dict of ints is not tracked by the
    cycle collector, where a pair holding a record is one more object each of its collections walks."""

    records: dict[str, Record]
    versions: dict[str, int]


class MemoryBackend(MemoryRetention):
    """Everything in this process's memory, for one project."""

    def __init__(self, project: str = "default", *, dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S) -> None:
        self.project = project
        self.dedup_window_s = dedup_window_s
        self._entities: dict[str, _EntityTable] = {}
        self._events: dict[str, EventInstance] = {}
        #: the ids of a chain's events, by its root's id (``correlation_id``)
        self._chains = IdIndex()
        self._caused: defaultdict[str, int] = defaultdict(int)
        self._runs: dict[str, Run] = {}
        #: run ids by what they ran for, and by their parent run
        self._runs_by_event = IdIndex()
        self._runs_by_message = IdIndex()
        self._runs_by_parent = IdIndex()
        self._journal: dict[tuple[str, str], Any] = {}
        self._messages: dict[str, QueuedMessage] = {}
        #: ids of messages not finished yet (done or unmatched), in queue order: what claim looks at
        self._open: dict[str, None] = {}
        #: open messages of another priority than the default: while there are any, a claim
        #: looks at every open message rather than stopping at its limit
        self._prioritised: set[str] = set()
        #: rate key -> its theoretical arrival time (flowbus.limits)
        self._arrivals: dict[str, float] = {}
        #: queue -> dedup id -> (the message sent with it, until when it is remembered); by queue
        #: first, as a pair with the queue in it would stay an object the cycle collector walks
        self._dedup: dict[QueueName, dict[str, tuple[str, dt.datetime]]] = {queue: {} for queue in QueueName}
        #: (queue, debounce key) -> the scheduled message of the key's waiting burst; a waiting
        #: burst's deadline by message id; the waiting bursts by when they were last seen due
        #: (a heap: each is made ready at the first claim once due, and leaves all three)
        self._bursts: dict[tuple[QueueName, str], str] = {}
        self._deadlines: dict[str, dt.datetime] = {}
        self._waiting: list[tuple[dt.datetime, str]] = []
        self._draft: tuple[str, str] | None = None
        self._versions: list[ConfigVersion] = []
        self._manifests: dict[int, Manifest] = {}
        self._outbox: list[int] = []
        self._active: int | None = None
        self._keys: dict[str, ApiKey] = {}
        #: the last tick each schedule fired
        self._ticks: dict[str, dt.datetime] = {}
        #: the time each rate limiter's next turn is free (seconds since the epoch), by key
        self._rates: dict[str, float] = {}

    # -- changesets ----------------------------------------------------------------------

    async def apply(self, changeset: Changeset) -> None:
        self._check(changeset)
        self._write(changeset)

    async def apply_many(self, changesets: Sequence[Changeset]) -> list[Conflict | None]:
        return await apply_each(changesets, self.apply)

    def _check(self, changeset: Changeset) -> None:
        for (entity, key), write in changeset.writes.items():
            if write.expected_version is None:
                continue
            table = self._entities.get(entity)
            version = table.versions.get(key, 0) if table is not None else 0
            if version != write.expected_version:
                raise Conflict(
                    f"{entity} {key!r} changed since it was read (version {write.expected_version} -> {version})"
                )
        leases: list[Ack] | list[Retry]
        for leases in (changeset.acks, changeset.retries):
            for lease in leases:
                message = self._messages.get(lease.message_id)
                if message is None or message.state is not MessageState.LEASED or message.lease_owner != lease.owner:
                    raise Conflict(f"the lease on message {lease.message_id} was lost")

    def _write(self, changeset: Changeset) -> None:
        for (entity, key), write in changeset.writes.items():
            table = self._entities.get(entity)
            if table is None:
                table = self._entities[entity] = _EntityTable({}, {})
            if write.record is None:
                table.records.pop(key, None)
                table.versions.pop(key, None)  # created again, a record starts again at version 1
            else:
                table.records[key] = write.record
                table.versions[key] = table.versions.get(key, 0) + 1
        if changeset.events:  # most changesets (a handler's run) publish nothing
            for instance in changeset.events:
                self._events[instance.id] = instance
                self._chains.add(instance.correlation_id, instance.id)
            for correlation_id, n in caused_events(changeset.events).items():
                self._caused[correlation_id] += n
        if changeset.messages:
            self._send(changeset.messages)
        self._add_runs(changeset.runs)
        messages = self._messages
        for ack in changeset.acks:
            message_id = ack.message_id
            messages[message_id] = _in_state(messages[message_id], ack.state, None, None)
            self._open.pop(message_id, None)
            if self._prioritised:
                self._prioritised.discard(message_id)
        for retry in changeset.retries:
            message = self._messages[retry.message_id]
            if retry.deferred:
                self._messages[retry.message_id] = message._replace(
                    state=MessageState.READY, available_at=retry.available_at, lease_owner=None,
                    lease_expires_at=None, throttled=True, deferrals=message.deferrals + retry.counted,
                )  # fmt: skip
                continue
            self._messages[retry.message_id] = message._replace(
                throttled=False,
                state=MessageState.DEAD if retry.dead else MessageState.READY,
                attempts=message.attempts + 1,
                errors=(*message.errors, retry.error),
                available_at=retry.available_at,
                lease_owner=None,
                lease_expires_at=None,
                blocking=retry.blocking,
            )

    # -- entities ------------------------------------------------------------------------

    async def read_entity(self, entity: str, key: str) -> Versioned | None:
        table = self._entities.get(entity)
        if table is None or key not in table.records:
            return None
        return Versioned(table.records[key], table.versions[key])

    def records(self, entity: str) -> dict[str, Record]:
        """Committed records of ``entity`` by key, read synchronously (tests)."""
        table = self._entities.get(entity)
        return dict(table.records) if table is not None else {}

    async def entities(self, entity: str, *, limit: int = 1000) -> dict[str, Record]:
        table = self._entities.get(entity)
        return dict(itertools.islice(table.records.items(), limit)) if table is not None else {}

    async def list_entities(
        self, entity: str, where: FieldFilter = ANY_RECORD, *, after: str | None = None, limit: int = 100
    ) -> list[KeyedRecord]:
        table = self._entities.get(entity)
        if table is None:
            return []
        found = (
            KeyedRecord(key, record, table.versions[key])
            for key, record in table.records.items()
            if (after is None or key > after) and _record_matches(record, where)
        )
        return heapq.nsmallest(limit, found, key=lambda r: r.key)

    def open_messages(self) -> list[QueuedMessage]:
        """Messages not done yet (ready, leased or dead), in queue order (tests)."""
        return [self._messages[message_id] for message_id in self._open]

    def entity_counts(self) -> dict[str, int]:
        return {name: len(table.records) for name, table in sorted(self._entities.items()) if table.records}

    # -- events, runs, journal -------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventInstance | None:
        return self._events.get(event_id)

    async def get_events(self, event_ids: Sequence[str]) -> Sequence[EventInstance]:
        return [e for e in map(self._events.get, event_ids) if e is not None]

    async def event_chain(self, correlation_id: str) -> Sequence[EventInstance]:
        return tuple(self._events[event_id] for event_id in self._chains.get(correlation_id))

    async def count_events(self) -> int:
        return len(self._events)

    async def chain_events(self, correlation_id: str) -> int:
        return self._caused.get(correlation_id, 0)

    def all_events(self) -> Sequence[EventInstance]:
        return tuple(self._events.values())

    async def list_events(
        self, where: EventFilter = ANY_EVENT, *, before: str | None = None, limit: int = 100
    ) -> list[EventInstance]:
        found = (e for e in self._events.values() if (before is None or e.id < before) and _event_matches(e, where))
        return heapq.nlargest(limit, found, key=lambda e: e.id)

    async def get_run(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    async def list_runs(self, where: RunFilter = ANY_RUN, *, before: str | None = None, limit: int = 100) -> list[Run]:
        found = (
            r
            for r in self._runs.values()
            if (before is None or r.id < before) and _run_matches(r, where) and self._origin_matches(r, where)
        )
        return heapq.nlargest(limit, found, key=lambda r: r.id)

    def _origin_matches(self, run: Run, where: RunFilter) -> bool:
        """The source and event type of what the run ran for: its source message, or its event."""
        if where.source is None and where.event_type is None:
            return True
        message = self._messages.get(run.message_id) if run.message_id else None
        event = self._events.get(run.event_id) if run.event_id else None
        origins = []
        if message is not None and message.kind is MessageKind.SOURCE:
            origins.append((message.body.get("source"), message.body.get("type")))
        if event is not None:
            origins.append((event.source, event.type))
        return any(
            (where.source is None or source == where.source) and (where.event_type is None or type_ == where.event_type)
            for source, type_ in origins
        )

    async def run_points(self, since: dt.datetime, *, limit: int) -> list[RunPoint]:
        floor = floor_id(since)
        found = heapq.nlargest(limit, (r for r in self._runs.values() if r.id >= floor), key=lambda r: r.id)
        return [RunPoint(r.id, r.status, r.duration_s) for r in found]

    async def runs_for_event(self, event_id: str) -> Sequence[Run]:
        return tuple(self._runs[run_id] for run_id in self._runs_by_event.get(event_id))

    async def runs_for_message(self, message_id: str) -> Sequence[Run]:
        return tuple(self._runs[run_id] for run_id in self._runs_by_message.get(message_id))

    async def child_runs(self, run_id: str) -> Sequence[Run]:
        return tuple(self._runs[child_id] for child_id in self._runs_by_parent.get(run_id))

    async def record_runs(self, runs: Sequence[Run]) -> None:
        self._add_runs(runs)

    def _add_runs(self, runs: Sequence[Run]) -> None:
        for run in runs:
            run_id = run.id
            self._runs[run_id] = run
            if run.event_id is not None:
                self._runs_by_event.add(run.event_id, run_id)
            if run.message_id is not None:
                self._runs_by_message.add(run.message_id, run_id)
            if run.parent_run_id is not None:
                self._runs_by_parent.add(run.parent_run_id, run_id)

    async def journaled_output(self, execution_key: str, step_key: str) -> tuple[bool, Any]:
        address = (execution_key, step_key)
        return (address in self._journal, self._journal.get(address))

    async def journal_step(self, execution_key: str, step_key: str, output: Any) -> None:
        self._journal[(execution_key, step_key)] = output

    # -- queues --------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        return self._send(messages)

    def _send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        now = _now()
        remembered_until = now + dt.timedelta(seconds=self.dedup_window_s)
        ids = []
        for outgoing in messages:
            queue, kind, body, group_key, dedup_id, config_version, not_before, trace_context, debounce = outgoing[:9]
            if debounce is not None:
                ids.append(self._debounce(outgoing, debounce, now))
                continue
            if dedup_id is not None:
                seen = self._dedup[queue].get(dedup_id)
                if seen is not None and seen[1] > now:
                    ids.append(seen[0])
                    continue
            message_id = new_id()
            if dedup_id is not None:
                self._dedup[queue][dedup_id] = (message_id, remembered_until)
            state = MessageState.SCHEDULED if not_before is not None and not_before > now else MessageState.READY
            # every field in QueuedMessage's order, flow control's five as the outgoing message holds
            # them: a published event sends several, and the named __new__ costs twice this
            self._messages[message_id] = _new_message(QueuedMessage, (
                message_id, queue, kind, body, group_key, dedup_id, state, 0, config_version, now, not_before or now,
                None, None, (), False, trace_context, None, 0, 0, False, *outgoing[9:14], None,
            ))  # fmt: skip
            self._open[message_id] = None
            if outgoing.priority != DEFAULT_PRIORITY:
                self._prioritised.add(message_id)
            ids.append(message_id)
        return ids

    def _debounce(self, outgoing: OutgoingMessage, debounce: Debounce, now: dt.datetime) -> str:
        """Fold a debounced message into the scheduled message of its burst, or start the burst."""
        address = (outgoing.queue, debounce.key)
        held = self._bursts.get(address)
        burst = self._messages.get(held) if held is not None else None
        due = now + dt.timedelta(seconds=debounce.period_s)
        if burst is not None and burst.state is MessageState.SCHEDULED:
            deadline = self._deadlines.get(burst.id)
            at = min(due, deadline) if deadline is not None else due
            self._messages[burst.id] = burst._replace(
                body=outgoing.body, config_version=outgoing.config_version, trace_context=outgoing.trace_context,
                available_at=at, debounced=burst.debounced + 1,
            )  # fmt: skip
            if at < burst.available_at:  # sooner (a shorter period since): the heap must know
                heapq.heappush(self._waiting, (at, burst.id))
            return burst.id
        if held is not None:  # its message left the burst (redriven, purged): this one starts a new burst
            self._deadlines.pop(held, None)
        message_id = new_id()
        self._messages[message_id] = QueuedMessage(
            message_id, outgoing.queue, outgoing.kind, outgoing.body, outgoing.group_key, None,
            MessageState.SCHEDULED, 0, outgoing.config_version, now, due, trace_context=outgoing.trace_context,
            debounce_key=debounce.key, debounced=1, priority=outgoing.priority,
        )  # fmt: skip
        self._open[message_id] = None
        self._bursts[address] = message_id
        if debounce.max_wait_s is not None:
            self._deadlines[message_id] = now + dt.timedelta(seconds=debounce.max_wait_s)
        heapq.heappush(self._waiting, (due, message_id))
        return message_id

    def _promote_due_bursts(self, now: dt.datetime) -> None:
        """Make every due burst ready, as a SQL claim's ``promote_due`` does (even one its FIFO
        group holds back): the next message of its key then starts a new burst. A burst moved
        later since it was queued goes back on the heap at its new time."""
        waiting = self._waiting
        while waiting and waiting[0][0] <= now:
            _, message_id = heapq.heappop(waiting)
            message = self._messages.get(message_id)
            if message is None or message.state is not MessageState.SCHEDULED or message.debounce_key is None:
                self._forget_burst(message_id, message)
            elif message.available_at > now:
                heapq.heappush(waiting, (message.available_at, message_id))
            else:
                self._messages[message_id] = message._replace(state=MessageState.READY)
                self._forget_burst(message_id, message)

    def _forget_burst(self, message_id: str, message: QueuedMessage | None) -> None:
        self._deadlines.pop(message_id, None)
        if message is not None and message.debounce_key is not None:
            address = (message.queue, message.debounce_key)
            if self._bursts.get(address) == message_id:
                del self._bursts[address]

    async def advance_schedule(self, schedule: str, tick: dt.datetime, messages: Sequence[OutgoingMessage]) -> bool:
        last = self._ticks.get(schedule)
        if last is not None and last >= tick:
            return False
        self._ticks[schedule] = tick
        self._send(messages)
        return True

    async def schedule_ticks(self) -> dict[str, dt.datetime]:
        return dict(self._ticks)

    async def take_rate(
        self, key: str, *, now: float, interval_s: float, max_wait_s: float, not_before: float = 0.0
    ) -> float:
        # no await before the write: the read and the move of the time are one step of the loop
        start = max(self._rates.get(key, now), now, not_before)
        if start - now <= max_wait_s:
            self._rates[key] = start + interval_s
        return start - now

    async def claim(
        self, queues: Sequence[QueueName], *, limit: int, owner: str, lease_s: float
    ) -> list[QueuedMessage]:
        now = _now()
        until = now + dt.timedelta(seconds=lease_s)
        self._promote_due_bursts(now)
        blocked: set[tuple[QueueName, str]] = set()
        found: list[QueuedMessage] = []
        walk_all = bool(self._prioritised)  # a later message may come first
        taken: dict[str, int] | None = None  # the slots taken of each concurrency key, once needed
        messages = self._messages
        for message_id in self._open:  # claim changes messages, never the set of open ids
            if len(found) >= limit and not walk_all:
                break
            message = messages[message_id]
            if message.queue not in queues:
                continue
            group = (message.queue, message.group_key) if message.group_key is not None else None
            if group is not None and group in blocked:
                continue
            deliverable = _deliverable(message, now)
            # the head of a group holds the group while it is not finished (or parked)
            if group is not None and not (message.state is MessageState.DEAD and not message.blocking):
                blocked.add(group)
            if not deliverable:
                continue
            key = message.concurrency_key
            if key is not None:
                taken = taken if taken is not None else self._taken(now)
                if taken.get(key, 0) >= (message.concurrency_limit or 1):
                    continue  # every slot of its key taken: not a candidate, as in the SQL claims
            if message.rate_key is not None and self._waits_for_turn(message, now):
                continue  # its key's next turn is ahead: not a candidate, as in the SQL claims
            found.append(message)
        if walk_all:  # by priority, then in queue order (a stable sort)
            found.sort(key=lambda m: -m.priority)
        if any(m.concurrency_key is not None or m.rate_key is not None for m in found):
            found = self._admitted(found[:limit], now, taken or {})
        claimed: list[QueuedMessage] = []
        for message in found[:limit]:
            leased = _in_state(message, MessageState.LEASED, owner, until)
            messages[message.id] = leased
            claimed.append(leased)
        return claimed

    def _admitted(self, found: list[QueuedMessage], now: dt.datetime, taken: dict[str, int]) -> list[QueuedMessage]:
        """The messages flow control admits (flowbus.limits), as the SQL backends' claims decide."""
        candidates = [
            Candidate(i, m.concurrency_key, m.concurrency_limit, m.rate_key, m.rate_interval_s)
            for i, m in enumerate(found)
        ]
        admission = admit(candidates, leased=taken, arrivals=self._arrivals, now=now.timestamp())
        self._arrivals.update(admission.arrivals)
        for index, at in admission.throttled:
            m = found[index]
            self._messages[m.id] = _in_state(m, MessageState.SCHEDULED, None, None)._replace(
                available_at=dt.datetime.fromtimestamp(at, dt.UTC), held=THROTTLED
            )
        return [found[index] for index in admission.admitted]

    def _taken(self, now: dt.datetime) -> dict[str, int]:
        """The slots taken of every concurrency key: its leased, unexpired messages."""
        taken: dict[str, int] = defaultdict(int)
        for message_id in self._open:
            m = self._messages[message_id]
            if m.concurrency_key is not None and _held(m, now):
                taken[m.concurrency_key] += 1
        return taken

    async def extend_leases(self, message_ids: Sequence[str], *, owner: str, lease_s: float) -> int:
        until = _now() + dt.timedelta(seconds=lease_s)
        count = 0
        for message_id in message_ids:
            message = self._messages.get(message_id)
            if message is not None and _held_by(message, owner):
                self._messages[message_id] = message._replace(lease_expires_at=until)
                count += 1
        return count

    async def release(self, message_ids: Sequence[str], *, owner: str) -> int:
        count = 0
        for message_id in message_ids:
            message = self._messages.get(message_id)
            if message is not None and _held_by(message, owner):
                self._messages[message_id] = _in_state(message, MessageState.READY, None, None)
                count += 1
        return count

    async def get_message(self, message_id: str) -> QueuedMessage | None:
        message = self._messages.get(message_id)
        if message is None or message.state is not MessageState.READY:
            return message
        now = _now()
        if message.available_at > now:
            return message
        # as a user sees it, as the SQL backends' get_message says it
        if self._waits_for_slot(message, now, None):
            return message._replace(held=WAITING_FOR_SLOT)
        if self._waits_for_turn(message, now):
            return message._replace(held=THROTTLED)
        return message._replace(held=None)

    def _waits_for_turn(self, m: QueuedMessage, now: dt.datetime) -> bool:
        """A ready message whose rate key's next turn is ahead: the claims skip it."""
        return m.rate_key is not None and self._arrivals.get(m.rate_key, 0.0) > now.timestamp()

    def _waits_for_slot(self, m: QueuedMessage, now: dt.datetime, taken: dict[str, int] | None) -> bool:
        if m.state is not MessageState.READY or m.concurrency_key is None or m.available_at > now:
            return False
        return (taken if taken is not None else self._taken(now)).get(m.concurrency_key, 0) >= (
            m.concurrency_limit or 1
        )

    async def held_stats(self) -> list[HeldStat]:
        now = _now()
        taken = self._taken(now)
        stats: dict[tuple[QueueName, str], HeldStat] = {}
        for message_id in self._open:
            m = self._messages[message_id]
            if m.available_at > now and (
                (m.state is MessageState.SCHEDULED and m.held == THROTTLED)
                or (m.state is MessageState.READY and m.throttled)
            ):
                held = THROTTLED
            elif self._waits_for_slot(m, now, taken):
                held = WAITING_FOR_SLOT
            elif m.state is MessageState.READY and m.available_at <= now and self._waits_for_turn(m, now):
                held = THROTTLED
            else:
                continue
            seen = stats.get((m.queue, held))
            count, oldest = (seen.messages, min(seen.oldest, m.created_at)) if seen else (0, m.created_at)
            stats[(m.queue, held)] = HeldStat(m.queue, held, count + 1, oldest)
        return list(stats.values())

    async def queue_depth(self) -> dict[tuple[QueueName, MessageState], int]:
        depth: dict[tuple[QueueName, MessageState], int] = defaultdict(int)
        for message in self._messages.values():
            debounced = message.state is MessageState.SCHEDULED and message.debounce_key is not None
            depth[(message.queue, MessageState.DEBOUNCED if debounced else message.state)] += 1
        return dict(depth)

    async def queue_stats(self) -> list[QueueStat]:
        stats: dict[tuple[QueueName, MessageState], QueueStat] = {}
        for m in self._messages.values():
            if m.state in (MessageState.READY, MessageState.LEASED, MessageState.DEAD):  # open, or dead
                seen = stats.get((m.queue, m.state))
                count, oldest = (seen.messages, min(seen.oldest, m.created_at)) if seen else (0, m.created_at)
                stats[(m.queue, m.state)] = QueueStat(m.queue, m.state, count + 1, oldest)
        return list(stats.values())

    async def group_stats(self, *, limit: int) -> list[GroupStat]:
        groups: dict[tuple[QueueName, str], list[QueuedMessage]] = defaultdict(list)
        for m in self._messages.values():  # in the order they were sent
            if m.group_key is not None and m.state is not MessageState.DONE:
                groups[(m.queue, m.group_key)].append(m)
        stats = []
        for (queue, key), members in groups.items():
            open_ = [m for m in members if m.state in (MessageState.READY, MessageState.LEASED)]
            if open_:
                blocker = next((m.id for m in members if m.state is MessageState.DEAD and m.blocking), None)
                stats.append(GroupStat(queue, key, len(open_), min(m.created_at for m in open_), blocker))
        stats.sort(key=lambda g: (g.blocked_by is None, g.oldest))
        return stats[:limit]

    async def dead_letters(
        self, where: DeadLetterFilter = ANY_DEAD_LETTER, *, after: str | None = None, limit: int = 100
    ) -> list[QueuedMessage]:
        found = (
            m
            for m in self._messages.values()
            if m.state is MessageState.DEAD and (after is None or m.id > after) and _matches(m, where)
        )
        return heapq.nsmallest(limit, found, key=lambda m: m.id)

    async def redrive(self, message_ids: Sequence[str], *, config_version: int | None = None) -> int:
        now = _now()
        count = 0
        for message_id in message_ids:
            message = self._messages.get(message_id)
            if message is None or message.state is not MessageState.DEAD:
                continue
            self._messages[message_id] = message._replace(
                state=MessageState.READY,
                attempts=0,
                available_at=now,
                blocking=False,
                config_version=config_version if config_version is not None else message.config_version,
                deferrals=0,
                throttled=False,
            )
            count += 1
        return count

    # -- config versions -----------------------------------------------------------------

    async def save_draft(self, text: str, *, file: str) -> None:
        self._draft = (text, file)

    async def get_draft(self) -> tuple[str, str] | None:
        return self._draft

    async def add_version(self, version: ConfigVersion, manifest: Manifest) -> ConfigVersion:
        number = len(self._versions) + 1
        stored = version._replace(number=number)
        self._versions.append(stored)
        self._manifests[number] = manifest._replace(version=number)
        self._outbox.append(number)
        return stored

    async def versions(self) -> list[ConfigVersion]:
        return list(self._versions)

    async def get_version(self, number: int) -> ConfigVersion | None:
        return self._versions[number - 1] if 0 < number <= len(self._versions) else None

    async def active_version(self) -> int | None:
        return self._active

    async def project_versions(self) -> list[int]:
        projected, self._outbox = self._outbox, []
        if projected:
            self._active = projected[-1]
        return projected

    async def manifest(self) -> Manifest | None:
        return self._manifests.get(self._active) if self._active is not None else None

    async def add_key(self, key: ApiKey) -> None:
        self._keys[key.id] = key

    async def get_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    async def find_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)  # a memory backend holds one project

    async def list_keys(self) -> list[ApiKey]:
        return list(self._keys.values())

    async def revoke_key(self, key_id: str) -> bool:
        key = self._keys.get(key_id)
        if key is None or not key.active:
            return False
        self._keys[key_id] = key._replace(revoked_at=_now())
        return True

    async def wait_for_work(self, timeout_s: float) -> str | None:
        # in one process, whoever sends work would run it; nothing else to wait for
        await asyncio.sleep(timeout_s)
        return None

    async def migrate(self) -> list[int]:
        return []

    async def close(self) -> None:
        return None


def _deliverable(message: QueuedMessage, now: dt.datetime) -> bool:
    if message.state is MessageState.READY or message.state is MessageState.SCHEDULED:
        return message.available_at <= now
    if message.state is MessageState.LEASED:  # a lease that ran out: its worker is gone
        return message.lease_expires_at is not None and message.lease_expires_at <= now
    return False


def _matches(message: QueuedMessage, where: DeadLetterFilter) -> bool:
    if where.queue is not None and message.queue != where.queue:
        return False
    if where.group_key is not None and message.group_key != where.group_key:
        return False
    if where.name is not None:
        body = message.body if isinstance(message.body, dict) else {}
        return where.name in (body.get("handler"), body.get("source"))
    return True


def _event_matches(event: EventInstance, where: EventFilter) -> bool:
    return (
        (where.type is None or event.type == where.type)
        and (where.source is None or event.source == where.source)
        and (where.correlation_id is None or event.correlation_id == where.correlation_id)
        and (where.since is None or event.time >= where.since)
        and (where.until is None or event.time < where.until)
    )


def _run_matches(run: Run, where: RunFilter) -> bool:
    return (
        (where.flow is None or run.flow == where.flow)
        and (where.handler is None or run.handler == where.handler)
        and (where.status is None or run.status == where.status)
        and (where.trigger is None or run.trigger == where.trigger)
        and (where.config_version is None or run.config_version == where.config_version)
    )


def _record_matches(record: Record, where: FieldFilter) -> bool:
    return all(field_text(record.get(field)) == text for field, text in where.items())


def _in_state(
    message: QueuedMessage, state: MessageState, owner: str | None, expires_at: dt.datetime | None
) -> QueuedMessage:
    """``message`` in ``state``, leased to ``owner`` until ``expires_at`` (None: not leased).

    Built from slices of the tuple: a claim and an ack do this once a message each, and a
    NamedTuple's ``_replace`` costs several times more, its ``__new__`` half as much again. Why
    it was held back (``held``, the last field) is let go: it is no longer held back."""
    return _new_message(QueuedMessage, (*message[:6], state, *message[7:11], owner, expires_at, *message[13:25], None))


#: a NamedTuple from all its fields, in order, without the Python ``__new__`` that names them
_new_message = tuple.__new__


def _held(message: QueuedMessage, now: dt.datetime) -> bool:
    """Whether a message is leased, its lease not run out: it takes a slot of its concurrency key."""
    expires = message.lease_expires_at
    return message.state is MessageState.LEASED and expires is not None and expires > now


def _held_by(message: QueuedMessage, owner: str) -> bool:
    return message.state is MessageState.LEASED and message.lease_owner == owner
