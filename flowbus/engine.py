"""The engine: flowbus from Python. Publish events, send messages, run flows, drain the queue.

::

    engine = Engine.from_file("flowbus.yaml")          # in memory; backend= for a database
    event = await engine.publish("OrderPlaced", {...})  # sync handlers run now, async ones queue
    await engine.drain()                                # run the queued work here

The engine is a facade over the layers below it: a :class:`~flowbus.runtime.runner.Runner` runs
the compiled config into units of work, which it commits or rolls back here, on its backend;
:meth:`drain` runs a :class:`~flowbus.worker.Worker` in this process. A worker given an engine
takes only its backend and its runner from it (and swaps the runner on a version switch); the
HTTP ingress and the runs themselves never go through it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, overload

from flowbus.config.loader import LoadedConfig, load_config
from flowbus.config.plan import Plan
from flowbus.delays import not_before as visible_at
from flowbus.errors import FlowbusError
from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import new_id
from flowbus.queue import OutgoingMessage, source_message
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.context import RunSource, StepFn
from flowbus.runtime.inbound import event_message, event_type_of
from flowbus.runtime.records import Message, Run
from flowbus.runtime.registry import ActionRegistry, Effects
from flowbus.runtime.routing import Match, match
from flowbus.runtime.runner import Runner
from flowbus.runtime.unit_of_work import UnitOfWork
from flowbus.stores.memory import MemoryBackend
from flowbus.stores.protocols import Backend
from flowbus.worker import Worker, WorkerSettings

#: a delay: seconds, a string like ``"10m"``, or a timedelta
Delay = float | str | dt.timedelta
#: a not-before time: an aware datetime or ISO 8601 text with an offset
When = dt.datetime | str


class Engine:
    """Runs one loaded config against one backend (in memory unless given)."""

    def __init__(
        self,
        config: LoadedConfig,
        *,
        backend: Backend | None = None,
        limits: RuntimeLimits | None = None,
        actions: Mapping[str, StepFn] | None = None,
        config_version: int | None = None,
    ) -> None:
        self.backend: Backend = backend if backend is not None else MemoryBackend(config.config.project.name)
        #: swapped by a worker that follows the published versions (:meth:`Runner.switched`)
        self.runner = Runner(
            config.plan,
            store=self.backend,
            actions=ActionRegistry(actions),
            limits=limits,
            config_version=config_version,
        )

    async def close(self) -> None:
        """Close the pooled HTTP clients of the http targets (the backend is its owner's to close)."""
        await self.runner.http_clients.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Engine:
        return cls(load_config(path), **kwargs)

    @property
    def plan(self) -> Plan:
        return self.runner.plan

    @property
    def config_version(self) -> int | None:
        return self.runner.config_version

    @property
    def limits(self) -> RuntimeLimits:
        return self.runner.limits

    def begin(self) -> UnitOfWork:
        return UnitOfWork(self.backend)

    def register_action(self, name: str, fn: StepFn, *, effects: Effects = "external") -> None:
        """Make ``fn`` the action of every step with ``action: <name>``. ``effects="none"``: it only
        computes, so its output needs no journal (a retry calls it again); by default its effects
        are external, and a retry replays its journaled output instead."""
        self.runner.registry.register(name, fn, effects=effects)

    def match(self, source: str, event_type: str) -> Match:
        """Which trigger flows a message would run, without running anything."""
        return match(self.runner.plan, source, event_type)

    async def handle(self, source: str, event_type: str, data: Any, *, message_id: str | None = None) -> list[Run]:
        """Run every enabled trigger flow of ``(source, event_type)`` now, each in its own unit of work."""
        message = Message(id=message_id or new_id(), source=source, type=event_type, data=freeze(data), time=_now())
        runs = []
        for flow in self.runner.plan.routes.get((source, event_type), ()):
            uow = self.begin()
            runs.append(await _finish(uow, await self.runner.run_trigger(uow, flow, message, RunSource())))
        return runs

    async def send(
        self,
        source: str,
        event_type: str,
        data: Any,
        *,
        group_key: str | None = None,
        dedup_id: str | None = None,
        delay: Delay | None = None,
        not_before: When | None = None,
    ) -> str:
        """Queue a raw message on the inbound queue for workers; returns its message id. With a
        ``delay`` (seconds, ``"10m"``, a timedelta) or a ``not_before`` time no worker sees it
        before then (:mod:`flowbus.delays`)."""
        message = self.source_message(source, event_type, data, group_key, dedup_id, visible_at(delay, not_before))
        [message_id] = await self.backend.send([message])
        return message_id

    def source_message(
        self,
        source: str,
        event_type: str,
        data: Any,
        group_key: str | None = None,
        dedup_id: str | None = None,
        not_before: dt.datetime | None = None,
    ) -> OutgoingMessage:
        """The inbound message :meth:`send` queues (for callers that queue many at once)."""
        return source_message(source, event_type, data, group_key, dedup_id, self.config_version, not_before)

    def event_type_of(self, source: str, payload: Any) -> str | None:
        """The event type of a raw payload, by its source's ``event_type_from`` path."""
        return event_type_of(self.plan, source, payload)

    async def send_event(
        self,
        event: str,
        properties: Mapping[str, Any],
        *,
        source: str,
        group_key: str | None = None,
        dedup_id: str | None = None,
        version: int | None = None,
        delay: Delay | None = None,
        not_before: When | None = None,
    ) -> str:
        """Queue an event to be published by a worker; its properties are checked now, against
        ``version`` (default: the latest), which the worker then publishes, no earlier than a
        ``delay`` or a ``not_before`` time when given.

        Raises :class:`EventValidationError` naming each bad property, before anything is queued.
        """
        message = self.event_message(event, properties, source, group_key, dedup_id, version)
        when = visible_at(delay, not_before)
        [message_id] = await self.backend.send([message._replace(not_before=when)])
        return message_id

    def event_message(
        self,
        event: str,
        properties: Mapping[str, Any],
        source: str,
        group_key: str | None = None,
        dedup_id: str | None = None,
        version: int | None = None,
    ) -> OutgoingMessage:
        """The checked inbound message :meth:`send_event` queues; raises as it does."""
        return event_message(
            self.plan, event, properties, source, group_key, dedup_id, version, config_version=self.config_version
        )

    @overload
    async def publish(
        self,
        event: str,
        properties: Mapping[str, Any],
        *,
        source: str = ...,
        version: int | None = ...,
        delay: None = None,
        not_before: None = None,
    ) -> EventInstance: ...

    @overload
    async def publish(
        self,
        event: str,
        properties: Mapping[str, Any],
        *,
        source: str = ...,
        version: int | None = ...,
        delay: Delay | None = None,
        not_before: When | None = None,
    ) -> EventInstance | str: ...

    async def publish(
        self,
        event: str,
        properties: Mapping[str, Any],
        *,
        source: str = "flowbus",
        version: int | None = None,
        delay: Delay | None = None,
        not_before: When | None = None,
    ) -> EventInstance | str:
        """Publish ``version`` of an event (default: the latest) from Python; raises
        :class:`RunFailed` when a sync handler fails.

        With a ``delay`` or a ``not_before`` time it is queued instead, for a worker to publish
        then (:meth:`send_event`), and the answer is the queued message's id.
        """
        if delay is not None or not_before is not None:
            return await self.send_event(
                event, properties, source=source, version=version, delay=delay, not_before=not_before
            )
        [instance] = await self.publish_many([(event, properties)], source=source, version=version)
        return instance

    async def publish_many(
        self, events: Iterable[tuple[str, Mapping[str, Any]]], *, source: str = "flowbus", version: int | None = None
    ) -> list[EventInstance]:
        """Publish ``(event, properties)`` pairs in one transaction: all of them, or none when one
        is invalid or one's sync handler fails (the error raised is that one's). Their async
        handlers' messages are queued together, in order; on PostgreSQL the whole batch waits
        for the server once."""
        uow, runner = self.begin(), self.runner
        try:
            instances = [
                await runner.publish(uow, event, properties, origin=None, source=source, parent=None, version=version)
                for event, properties in events
            ]
        except FlowbusError:
            await uow.rollback()
            raise
        await uow.commit()
        return instances

    async def run_flow(self, name: str, inputs: Mapping[str, Any] | None = None) -> Run:
        """Run a logic flow with typed inputs in its own unit of work and return its run."""
        self.runner.flow(name)  # an unknown flow is refused before anything begins
        uow = self.begin()
        return await _finish(uow, await self.runner.run_flow(uow, name, inputs or {}))

    async def drain(self, *, retry: bool = False, max_messages: int | None = None) -> list[Run]:
        """Run queued work in this process until nothing is deliverable; returns the runs.

        With ``retry=False`` (tests, ``flowbus try``) a failing message is dead-lettered at once
        instead of waiting out its backoff; with ``retry=True`` it follows its retry policy and
        stays queued while it waits.
        """
        worker = Worker(self, WorkerSettings(retry_failures=retry))
        return await worker.run_until_idle(max_messages=max_messages)


async def _finish(uow: UnitOfWork, run: Run) -> Run:
    if run.succeeded:
        await uow.commit()
    else:
        await uow.rollback()
    return run


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
