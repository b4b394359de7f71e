"""The contracts a storage backend fulfils.

A backend hands out units of work. Everything one run changes (entity records, published
event instances, queued jobs, run records) goes through its unit of work and becomes visible
to anyone else only at ``commit``; ``rollback`` leaves no trace of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from flowbus.events.instance import EventInstance
from flowbus.runtime.records import Job, Run

Record = Mapping[str, Any]


class EntityStore(Protocol):
    """Entity records by ``(entity, key)``, as seen from inside one unit of work."""

    async def get(self, entity: str, key: str) -> Record | None: ...

    async def put(self, entity: str, key: str, record: Record) -> None: ...

    async def delete(self, entity: str, key: str) -> bool: ...


class UnitOfWork(Protocol):
    @property
    def entities(self) -> EntityStore: ...

    def add_event(self, instance: EventInstance) -> None: ...

    def enqueue(self, job: Job) -> None: ...

    def add_run(self, run: Run) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class EventStore(Protocol):
    """Committed event instances: appended, never updated or deleted."""

    def get(self, event_id: str) -> EventInstance | None: ...

    def chain(self, correlation_id: str) -> Sequence[EventInstance]: ...


class RunStore(Protocol):
    def get(self, run_id: str) -> Run | None: ...

    def for_event(self, event_id: str) -> Sequence[Run]: ...

    def children(self, run_id: str) -> Sequence[Run]:
        """Runs started by run ``run_id``: called flows and sync handlers of its events."""

    def add(self, runs: Sequence[Run]) -> None:
        """Record runs outside any unit of work: the trace of a run that was rolled back."""


class JobQueue(Protocol):
    def claim(self) -> Job | None:
        """The oldest queued job, removed from the queue; None when idle."""

    def fail(self, job: Job, error: str) -> None:
        """Keep a job whose run failed, with its error, for inspection."""


class Backend(Protocol):
    @property
    def events(self) -> EventStore: ...

    @property
    def runs(self) -> RunStore: ...

    @property
    def jobs(self) -> JobQueue: ...

    def begin(self) -> UnitOfWork: ...

    async def read_entity(self, entity: str, key: str) -> Record | None:
        """A committed entity record."""
