"""Retention in memory: the :class:`~flowbus.stores.protocols.RetentionStore` part of the memory
backend, removing what the SQL backends remove, in the same order and batches."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Iterable, Iterator

from flowbus.events.instance import EventInstance
from flowbus.ids import floor_id, time_of
from flowbus.queue import MessageState, QueuedMessage, QueueName
from flowbus.runtime.bounds import expired_steps
from flowbus.runtime.records import Run
from flowbus.stores.memory_index import IdIndex
from flowbus.stores.protocols import Kept, RetentionKind

_FINISHED = (MessageState.DONE, MessageState.UNMATCHED)


class MemoryRetention:
    """Mixed into :class:`~flowbus.stores.memory.MemoryBackend`, whose dicts it prunes."""

    _events: dict[str, EventInstance]
    _chains: IdIndex
    _runs: dict[str, Run]
    _runs_by_event: IdIndex
    _runs_by_message: IdIndex
    _runs_by_parent: IdIndex
    _messages: dict[str, QueuedMessage]
    _dedup: dict[QueueName, dict[str, tuple[str, dt.datetime]]]
    _open: dict[str, None]
    #: the last run whose steps expired (runs at or below it hold a marker)
    _steps_through = ""
    #: who holds the sweep lease, and until when (a POSIX time)
    _sweep: tuple[str, float] = ("", 0.0)

    async def purge(self, kind: RetentionKind, before: dt.datetime, *, limit: int) -> int:
        if kind is RetentionKind.EVENTS:
            return self._purge_events(heapq.nsmallest(limit, (i for i in self._events if i < floor_id(before))))
        if kind is RetentionKind.RUNS:
            return self._purge_runs(heapq.nsmallest(limit, (i for i in self._runs if i < floor_id(before))))
        if kind is RetentionKind.STEPS:
            due = heapq.nsmallest(limit, self._with_steps(before))
            for run_id in due:  # the indexes hold ids: the run changes in one place
                run = self._runs[run_id]
                self._runs[run_id] = run._replace(steps=expired_steps(run.steps))
            if due:
                self._steps_through = due[-1]
            return len(due)
        if kind is RetentionKind.MESSAGES:
            # as the SQL backends: the oldest finished messages, of which those sent before the cut
            window = itertools.islice((m for m in self._messages.values() if m.state in _FINISHED), limit)
            return self._purge_messages([m.id for m in window if _aged(m, before)])
        return self._purge_messages([m.id for m in itertools.islice(self._dead_letters(before), limit)])

    async def purgeable(self, kind: RetentionKind, before: dt.datetime) -> int:
        if kind is RetentionKind.EVENTS:
            return sum(1 for i in self._events if i < floor_id(before))
        if kind is RetentionKind.RUNS:
            return sum(1 for i in self._runs if i < floor_id(before))
        if kind is RetentionKind.STEPS:
            return sum(1 for _ in self._with_steps(before))
        if kind is RetentionKind.MESSAGES:
            return sum(1 for m in self._messages.values() if m.state in _FINISHED and _aged(m, before))
        return sum(1 for _ in self._dead_letters(before))

    async def kept(self) -> list[Kept]:
        def by_id(kind: RetentionKind, ids: list[str]) -> Kept:
            return Kept(kind, len(ids), time_of(min(ids)) if ids else None)

        def by_time(kind: RetentionKind, messages: list[QueuedMessage]) -> Kept:
            return Kept(kind, len(messages), min((m.created_at for m in messages), default=None))

        return [
            by_id(RetentionKind.EVENTS, list(self._events)),
            by_id(RetentionKind.RUNS, list(self._runs)),
            by_id(RetentionKind.STEPS, [i for i in self._runs if i > self._steps_through]),
            by_time(RetentionKind.MESSAGES, [m for m in self._messages.values() if m.state in _FINISHED]),
            by_time(RetentionKind.DEAD_LETTERS, [m for m in self._messages.values() if m.state is MessageState.DEAD]),
        ]

    async def take_sweep(self, owner: str, *, now: dt.datetime, lease_s: float) -> bool:
        holder, until = self._sweep
        if holder != owner and until >= now.timestamp():
            return False
        self._sweep = (owner, now.timestamp() + lease_s)
        return True

    async def reclaim_space(self) -> None:
        return None  # memory is given back as the dicts shrink

    # -- the parts -------------------------------------------------------------------------

    def _with_steps(self, before: dt.datetime) -> Iterator[str]:
        floor = floor_id(before)
        return (i for i in self._runs if self._steps_through < i < floor)

    def _dead_letters(self, before: dt.datetime) -> Iterable[QueuedMessage]:
        return (
            m for m in self._messages.values() if m.state is MessageState.DEAD and not m.blocking and _aged(m, before)
        )

    def _purge_events(self, ids: list[str]) -> int:
        gone = {self._events.pop(i).correlation_id for i in ids}
        for correlation_id in gone:
            chain = self._chains.get(correlation_id)
            self._chains.replace(correlation_id, [i for i in chain if i in self._events])
        return len(ids)

    def _purge_runs(self, ids: list[str]) -> int:
        for run_id in ids:
            self._unindex(self._runs.pop(run_id))
        return len(ids)

    def _unindex(self, run: Run) -> None:
        pairs = (
            (self._runs_by_event, run.event_id), (self._runs_by_message, run.message_id),
            (self._runs_by_parent, run.parent_run_id),
        )  # fmt: skip
        for index, key in pairs:
            if key is not None:
                index.replace(key, [i for i in index.get(key) if i != run.id])

    def _purge_messages(self, ids: list[str]) -> int:
        now = dt.datetime.now(dt.UTC)
        for message_id in ids:
            message = self._messages.pop(message_id)
            self._open.pop(message_id, None)
            if message.dedup_id is not None:  # its de-duplication entry too, once expired
                remembered = self._dedup[message.queue]
                seen = remembered.get(message.dedup_id)
                if seen is not None and seen[1] < now:
                    del remembered[message.dedup_id]
        return len(ids)


def _aged(message: QueuedMessage, before: dt.datetime) -> bool:
    """Whether a message is past a cut: sent before it, and due before it too (a message delayed
    for longer than its kind is kept is aged from when it was due, not from when it was sent)."""
    return message.created_at < before and message.available_at < before
