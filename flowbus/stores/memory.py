"""The in-memory backend: the whole store in dicts, units of work as write overlays.

It keeps the same all-or-nothing contract as a database backend, which makes it the backend
of ``flowbus try`` and of users' own tests (see :mod:`flowbus.testing`). It is not shared
between processes and keeps nothing after exit.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.runtime.records import Job, Run
from flowbus.stores.protocols import Record

_DELETED: Any = object()


class MemoryEntityStore:
    """Reads through a unit of work's pending writes to the committed records."""

    __slots__ = ("_committed", "_pending")

    def __init__(self, committed: dict[str, dict[str, Record]]) -> None:
        self._committed = committed
        self._pending: dict[tuple[str, str], Any] = {}

    async def get(self, entity: str, key: str) -> Record | None:
        pending = self._pending.get((entity, key))
        if pending is not None:
            return None if pending is _DELETED else pending
        table = self._committed.get(entity)
        return None if table is None else table.get(key)

    async def put(self, entity: str, key: str, record: Record) -> None:
        self._pending[(entity, key)] = freeze(record)

    async def delete(self, entity: str, key: str) -> bool:
        existed = await self.get(entity, key) is not None
        self._pending[(entity, key)] = _DELETED
        return existed


class MemoryUnitOfWork:
    __slots__ = ("_backend", "_done", "_events", "_jobs", "_runs", "entities")

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend
        self.entities = MemoryEntityStore(backend.entity_tables)
        self._events: list[EventInstance] = []
        self._jobs: list[Job] = []
        self._runs: list[Run] = []
        self._done = False

    def add_event(self, instance: EventInstance) -> None:
        self._events.append(instance)

    def enqueue(self, job: Job) -> None:
        self._jobs.append(job)

    def add_run(self, run: Run) -> None:
        self._runs.append(run)

    @property
    def runs(self) -> Sequence[Run]:
        return self._runs

    async def commit(self) -> None:
        self._finish()
        tables = self._backend.entity_tables
        for (entity, key), record in self.entities._pending.items():
            if record is _DELETED:
                tables.get(entity, {}).pop(key, None)
            else:
                tables.setdefault(entity, {})[key] = record
        if self._events:
            self._backend.events.append(self._events)
        if self._jobs:
            self._backend.jobs.push(self._jobs)
        self._backend.runs.add(self._runs)

    async def rollback(self) -> None:
        self._finish()
        # the trace of what was attempted stays; its effects do not
        self._backend.runs.add(self._runs)

    def _finish(self) -> None:
        if self._done:
            raise RuntimeError("this unit of work has already been committed or rolled back")
        self._done = True


class MemoryEventStore:
    def __init__(self) -> None:
        self._by_id: dict[str, EventInstance] = {}
        self._by_correlation: defaultdict[str, list[EventInstance]] = defaultdict(list)

    def append(self, instances: Sequence[EventInstance]) -> None:
        for instance in instances:
            self._by_id[instance.id] = instance
            self._by_correlation[instance.correlation_id].append(instance)

    def get(self, event_id: str) -> EventInstance | None:
        return self._by_id.get(event_id)

    def chain(self, correlation_id: str) -> Sequence[EventInstance]:
        return tuple(self._by_correlation.get(correlation_id, ()))

    def all(self) -> Sequence[EventInstance]:
        return tuple(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


class MemoryRunStore:
    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._by_event: defaultdict[str, list[Run]] = defaultdict(list)
        self._by_parent: defaultdict[str, list[Run]] = defaultdict(list)

    def add(self, runs: Sequence[Run]) -> None:
        for run in runs:
            self._runs[run.id] = run
            if run.event_id is not None:
                self._by_event[run.event_id].append(run)
            if run.parent_run_id is not None:
                self._by_parent[run.parent_run_id].append(run)

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def for_event(self, event_id: str) -> Sequence[Run]:
        return tuple(self._by_event.get(event_id, ()))

    def children(self, run_id: str) -> Sequence[Run]:
        return tuple(self._by_parent.get(run_id, ()))

    def all(self) -> Sequence[Run]:
        return tuple(self._runs.values())


@dataclass(frozen=True, kw_only=True)
class FailedJob:
    job: Job
    error: str


class MemoryJobQueue:
    def __init__(self) -> None:
        self._queued: deque[Job] = deque()
        self.failed: list[FailedJob] = []

    def push(self, jobs: Sequence[Job]) -> None:
        self._queued.extend(jobs)

    def claim(self) -> Job | None:
        return self._queued.popleft() if self._queued else None

    def fail(self, job: Job, error: str) -> None:
        self.failed.append(FailedJob(job=job, error=error))

    def pending(self) -> Sequence[Job]:
        return tuple(self._queued)

    def __len__(self) -> int:
        return len(self._queued)


class MemoryBackend:
    """Everything in this process's memory."""

    def __init__(self) -> None:
        self.entity_tables: dict[str, dict[str, Record]] = {}
        self.events = MemoryEventStore()
        self.runs = MemoryRunStore()
        self.jobs = MemoryJobQueue()

    def begin(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    async def read_entity(self, entity: str, key: str) -> Record | None:
        return self.entity_tables.get(entity, {}).get(key)

    def entities(self, entity: str) -> dict[str, Record]:
        """Every committed record of ``entity``, by key (a copy)."""
        return dict(self.entity_tables.get(entity, {}))
