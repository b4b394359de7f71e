"""The engine: routes messages to trigger flows, publishes events to handlers, runs flows.

Every run writes into one unit of work. Sync handlers run inside the publisher's unit of work,
in registration order, and async handlers are queued in it as outbound messages: if the
publisher rolls back, no handler effect and no queued message survives (design §4, transactional
outbox). Queued work is run by :mod:`flowbus.worker`, in another process or by :meth:`drain`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowbus.config.loader import LoadedConfig, load_config
from flowbus.errors import (
    ChainLimitExceeded,
    FlowbusError,
    LimitExceeded,
    Rejected,
    RunFailed,
    StepFailed,
    UnknownNameError,
)
from flowbus.events.frozen import FrozenDict, freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import new_id
from flowbus.queue import MessageKind, OutgoingMessage, QueuedMessage, QueueName, RetryPolicy
from flowbus.runtime import inbound
from flowbus.runtime.actions import BUILTIN_ACTIONS
from flowbus.runtime.context import Origin, RunContext, RunSource
from flowbus.runtime.plan import CompiledEvent, CompiledFlow, CompiledHandler, Plan, StepFn
from flowbus.runtime.records import Message, Run, RunStatus, Trigger
from flowbus.runtime.routing import Match, Unmatched, match, unmatched
from flowbus.stores.memory import MemoryBackend
from flowbus.stores.protocols import Backend
from flowbus.stores.unit_of_work import UnitOfWork

_RECENT_EVENTS = 256


@dataclass(frozen=True, kw_only=True)
class RuntimeLimits:
    """Bounds on what one run may do, so no config or payload can run away."""

    max_chain_depth: int = 16
    #: events one root (a source message or a root event) may cause, all its chain's generations together
    max_chain_events: int = 5_000
    max_call_depth: int = 8
    max_foreach_items: int = 10_000
    max_step_runs: int = 100_000
    #: step runs a run's trace keeps: the first tenth and the rest from the end (flowbus.runtime.bounds)
    max_trace_steps: int = 1_000
    #: bytes of JSON a step's input or output keeps in a trace; a longer one is replaced by a marker
    max_trace_value_bytes: int = 16 * 1024


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
        self.config = config
        self.plan: Plan = config.plan
        self.config_version = config_version
        self.limits = limits or RuntimeLimits()
        self.backend: Backend = backend if backend is not None else MemoryBackend(config.config.project.name)
        self.actions: dict[str, StepFn] = dict(BUILTIN_ACTIONS)
        for name, fn in (actions or {}).items():
            self.register_action(name, fn)
        # event instances never change, and an event's async handlers are usually queued (and
        # claimed) together: a small cache saves reading the same event once per handler
        self._recent_events: dict[str, EventInstance] = {}
        # a source that sends a type nobody handles sends it again and again: the nearest pairs
        # (difflib over every route) are worked out once a pair; the pairs come from outside, so
        # the memo is bounded
        self._unmatched: dict[tuple[str, str], Unmatched] = {}

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Engine:
        return cls(load_config(path), **kwargs)

    def begin(self) -> UnitOfWork:
        return UnitOfWork(self.backend)

    # -- actions -------------------------------------------------------------------------

    def register_action(self, name: str, fn: StepFn) -> None:
        """Make ``fn`` the action of every step with ``action: <name>``."""
        if name in BUILTIN_ACTIONS:
            raise FlowbusError(f"{name!r} is a built-in action and cannot be replaced")
        self.actions[name] = fn

    def action(self, name: str) -> StepFn:
        fn = self.actions.get(name)
        if fn is None:
            raise UnknownNameError(
                f"no action {name!r} is registered (use Engine.register_action){_near(name, self.actions)}"
            )
        return fn

    # -- routing -------------------------------------------------------------------------

    def match(self, source: str, event_type: str) -> Match:
        """Which trigger flows a message would run, without running anything."""
        return match(self.plan, source, event_type)

    def unmatched(self, message: QueuedMessage) -> Unmatched | None:
        """Why a source message would run nothing: its pair has no enabled trigger flow. None when it
        has one, and for handler and event messages (an event without subscribers is normal)."""
        if message.kind is not MessageKind.SOURCE:
            return None
        pair = (message.body["source"], message.body["type"])
        if pair in self.plan.routes:
            return None
        found = self._unmatched.get(pair)
        if found is None:
            if len(self._unmatched) >= _RECENT_EVENTS:
                self._unmatched.clear()
            found = self._unmatched[pair] = unmatched(self.plan.routes, *pair)
        return found

    def event_type_of(self, source: str, payload: Any) -> str | None:
        """The event type of a raw payload, by its source's ``event_type_from`` path."""
        return inbound.event_type_of(self.plan, source, payload)

    # -- entry points --------------------------------------------------------------------

    async def handle(self, source: str, event_type: str, data: Any, *, message_id: str | None = None) -> list[Run]:
        """Run every enabled trigger flow of ``(source, event_type)`` now, each in its own unit of work."""
        message = Message(id=message_id or new_id(), source=source, type=event_type, data=freeze(data), time=_now())
        runs = []
        for flow in self.plan.routes.get((source, event_type), ()):
            uow = self.begin()
            runs.append(await _finish(uow, await self._run_trigger(uow, flow, message, RunSource())))
        return runs

    async def send(
        self,
        source: str,
        event_type: str,
        data: Any,
        *,
        group_key: str | None = None,
        dedup_id: str | None = None,
    ) -> str:
        """Queue a raw message on the inbound queue for workers; returns its message id."""
        [message_id] = await self.backend.send([self.source_message(source, event_type, data, group_key, dedup_id)])
        return message_id

    def source_message(
        self, source: str, event_type: str, data: Any, group_key: str | None = None, dedup_id: str | None = None
    ) -> OutgoingMessage:
        """The inbound message :meth:`send` queues (for callers that queue many at once)."""
        return inbound.source_message(source, event_type, data, group_key, dedup_id, self.config_version)

    async def send_event(
        self,
        event: str,
        properties: Mapping[str, Any],
        *,
        source: str,
        group_key: str | None = None,
        dedup_id: str | None = None,
        version: int | None = None,
    ) -> str:
        """Queue an event to be published by a worker; its properties are checked now, against
        ``version`` (default: the latest), which the worker then publishes.

        Raises :class:`EventValidationError` naming each bad property, before anything is queued.
        """
        message = self.event_message(event, properties, source, group_key, dedup_id, version)
        [message_id] = await self.backend.send([message])
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
        return inbound.event_message(
            self.plan, event, properties, source, group_key, dedup_id, version, config_version=self.config_version
        )

    async def publish(
        self, event: str, properties: Mapping[str, Any], *, source: str = "flowbus", version: int | None = None
    ) -> EventInstance:
        """Publish ``version`` of an event (default: the latest) from Python; raises
        :class:`RunFailed` when a sync handler fails."""
        uow = self.begin()
        try:
            instance = await self._publish(
                uow, event, properties, origin=None, source=source, parent=None, version=version
            )
        except FlowbusError:
            await uow.rollback()
            raise
        await uow.commit()
        return instance

    async def run_flow(self, name: str, inputs: Mapping[str, Any] | None = None) -> Run:
        """Run a logic flow with typed inputs in its own unit of work and return its run."""
        flow = self._flow(name)
        values = {**flow.input_defaults, **flow.inputs.validate(inputs or {})}
        uow = self.begin()
        ctx = RunContext(
            self, uow, flow, trigger=Trigger.DIRECT, data=freeze(values), origin=None, envelope=FrozenDict()
        )
        return await _finish(uow, await ctx.execute())

    async def drain(self, *, retry: bool = False, max_messages: int | None = None) -> list[Run]:
        """Run queued work in this process until nothing is deliverable; returns the runs.

        With ``retry=False`` (tests, ``flowbus try``) a failing message is dead-lettered at once
        instead of waiting out its backoff; with ``retry=True`` it follows its retry policy and
        stays queued while it waits.
        """
        from flowbus.worker import Worker, WorkerSettings  # noqa: PLC0415 - the worker builds on the engine

        worker = Worker(self, WorkerSettings(retry_failures=retry))
        return await worker.run_until_idle(max_messages=max_messages)

    # -- queued work (used by the worker) ------------------------------------------------

    async def process(self, message: QueuedMessage, uow: UnitOfWork) -> list[Run]:
        """Run what a claimed message asks for, into ``uow``; the caller commits or retries.

        A source message runs all its trigger flows in the one unit of work, so that a retry
        never repeats a flow whose effects were already committed.
        """
        source = RunSource(message=message, config_version=self.config_version)
        body = message.body
        if message.kind is MessageKind.HANDLER:
            handler = self.plan.handlers.get(body["handler"])
            instance = await self._event(body["event_id"])
            if handler is None or instance is None:
                raise StepFailed(
                    f"message {message.id} names handler {body['handler']!r} and event {body['event_id']!r}; "
                    "the active config or the event store has no such thing"
                )
            return [await self._run_handler(uow, handler, instance, _envelope(instance), None, source)]
        if message.kind is MessageKind.EVENT:
            await self._publish(
                uow, body["event"], body["properties"], origin=None, source=body["source"], parent=None,
                parent_source=source, version=body.get("version"),
            )  # fmt: skip
            return list(uow.runs)
        incoming = Message(
            id=message.id, source=body["source"], type=body["type"], data=freeze(body["data"]), time=message.created_at
        )
        return [
            await self._run_trigger(uow, flow, incoming, source)
            for flow in self.plan.routes.get((incoming.source, incoming.type), ())
        ]

    async def _event(self, event_id: str) -> EventInstance | None:
        instance = self._recent_events.get(event_id)
        if instance is None:
            instance = await self.backend.get_event(event_id)
            if instance is not None:
                if len(self._recent_events) >= _RECENT_EVENTS:
                    del self._recent_events[next(iter(self._recent_events))]
                self._recent_events[event_id] = instance
        return instance

    def retry_policy(self, message: QueuedMessage) -> RetryPolicy:
        """The policy of the handler or flows a message runs (the strictest when several)."""
        body = message.body
        if message.kind is MessageKind.HANDLER:
            handler = self.plan.handlers.get(body.get("handler", ""))
            if handler is None:
                return RetryPolicy()
            flow = handler.flow.model
            return _policy(handler.model.retry or flow.retry, flow.on_failure)
        flows = self.plan.routes.get((body.get("source", ""), body.get("type", "")), ())
        policies = [_policy(f.model.retry, f.model.on_failure) for f in flows] or [RetryPolicy()]
        return max(policies, key=lambda p: (p.on_failure == "block", p.max_attempts))

    # -- services for running flows (RunHost) ----------------------------------------------

    async def publish_from(
        self,
        run: RunContext,
        event: str,
        properties: Mapping[str, Any],
        *,
        step_key: str,
        version: int | None = None,
    ) -> EventInstance:
        return await self._publish(
            run.uow,
            event,
            properties,
            origin=run.origin,
            source=f"flow/{run.flow.name}",
            parent=run,
            parent_source=run.source.nested(step_key),
            version=version,
        )

    async def call_from(self, run: RunContext, flow_name: str, inputs: Mapping[str, Any], *, step_key: str) -> Run:
        if run.call_depth >= self.limits.max_call_depth:
            raise LimitExceeded(f"calls nest deeper than {self.limits.max_call_depth} (max_call_depth)")
        flow = self._flow(flow_name)
        values = {**flow.input_defaults, **flow.inputs.validate(inputs)}
        ctx = RunContext(
            self,
            run.uow,
            flow,
            trigger=Trigger.CALL,
            data=freeze(values),
            origin=run.origin,
            envelope=run.scope["event"],
            parent_run_id=run.id,
            call_depth=run.call_depth + 1,
            # the calling step's key (with its loop index) keeps each call's journal apart
            source=run.source.nested(step_key).nested(flow.name),
        )
        return await ctx.execute()

    # -- internals -----------------------------------------------------------------------

    async def _run_trigger(self, uow: UnitOfWork, flow: CompiledFlow, message: Message, source: RunSource) -> Run:
        envelope = FrozenDict(id=message.id, source=message.source, type=message.type, time=message.time)
        ctx = RunContext(
            self,
            uow,
            flow,
            trigger=Trigger.MESSAGE,
            data=message.data,
            origin=message,
            envelope=envelope,
            source=source.nested(flow.name),
        )
        return await ctx.execute()

    async def _publish(
        self,
        uow: UnitOfWork,
        event: str,
        properties: Mapping[str, Any],
        *,
        origin: Origin,
        source: str,
        parent: RunContext | None,
        parent_source: RunSource | None = None,
        version: int | None = None,
    ) -> EventInstance:
        compiled = self._compiled_event(event, version)
        definition = compiled.definition
        instance_id = new_id()
        correlation_id, causation_id, depth = self._chain(instance_id, definition.name, origin)
        if depth:
            await self._count_in_chain(uow, correlation_id, definition.name, origin)
        instance = EventInstance(
            id=instance_id,
            type=definition.name,
            version=definition.version,
            source=source,
            time=_now(),
            data=freeze(compiled.schema.validate(properties)),
            correlation_id=correlation_id,
            causation_id=causation_id,
            depth=depth,
        )
        uow.add_event(instance)
        # only the handlers of the version published
        subscribers = compiled.subscribers
        run_source = parent_source or RunSource(config_version=self.config_version)
        parent_run_id = parent.id if parent is not None else None
        if subscribers.sync:
            envelope = _envelope(instance)
            for handler in subscribers.sync:
                run = await self._run_handler(uow, handler, instance, envelope, parent_run_id, run_source)
                if run.status is RunStatus.REJECTED:
                    # a sync handler's refusal is the publisher's refusal: not retried either
                    raise Rejected(f"sync handler {handler.name!r} rejected {event}: {run.error}")
                if not run.succeeded:
                    raise RunFailed(f"sync handler {handler.name!r} of {event} failed: {run.error}", run=run)
        group_key = run_source.group_key
        for handler in subscribers.async_:
            # one message per (event, handler): its dedup id says so, so a retried publisher cannot double it
            body = {"handler": handler.name, "event_id": instance.id}
            uow.enqueue(
                OutgoingMessage(
                    QueueName.OUTBOUND,
                    MessageKind.HANDLER,
                    body,
                    group_key,
                    f"{instance.id}/{handler.name}",
                    self.config_version,
                )
            )
        return instance

    def _chain(self, instance_id: str, name: str, origin: Origin) -> tuple[str, str | None, int]:
        """``(correlation_id, causation_id, depth)`` of a new instance published because of ``origin``."""
        if origin is None:
            return instance_id, None, 0
        if isinstance(origin, EventInstance):
            correlation_id, depth = origin.correlation_id, origin.depth + 1
        else:
            correlation_id, depth = origin.id, 1
        if depth > self.limits.max_chain_depth:
            raise ChainLimitExceeded(
                f"publishing {name} would make an event chain {depth} deep; the limit is "
                f"{self.limits.max_chain_depth} (max_chain_depth). Does a handler publish the event that triggers it?"
            )
        return correlation_id, origin.id, depth

    async def _count_in_chain(self, uow: UnitOfWork, correlation_id: str, name: str, origin: Origin) -> None:
        """Refuse an event past the events its root may cause: a fan-out grows in breadth as well
        as in depth, and a chain within its depth may still be thousands of events wide."""
        # a chain caused by a source message begins in this unit of work: nothing of it is stored yet
        caused = await uow.caused(correlation_id, stored=isinstance(origin, EventInstance))
        if caused >= self.limits.max_chain_events:
            raise ChainLimitExceeded(
                f"publishing {name} would make root {correlation_id} cause more than "
                f"{self.limits.max_chain_events:,} events (max_chain_events). Does a handler publish more "
                "than one event that leads back to it?"
            )

    async def _run_handler(
        self,
        uow: UnitOfWork,
        handler: CompiledHandler,
        instance: EventInstance,
        envelope: Mapping[str, Any],
        parent_run_id: str | None,
        source: RunSource,
    ) -> Run:
        # bindings were type-checked against the event definition when the config loaded, and the
        # instance's data was validated when it was published: only defaults remain to apply
        data = instance.data
        inputs = dict(handler.flow.input_defaults)
        for prop, name in handler.bindings:
            value = data.get(prop)
            if value is not None:
                inputs[name] = value
        ctx = RunContext(
            self,
            uow,
            handler.flow,
            trigger=Trigger.HANDLER,
            data=FrozenDict(inputs),
            origin=instance,
            envelope=envelope,
            handler=handler.name,
            parent_run_id=parent_run_id,
            source=source.nested(handler.name),
        )
        return await ctx.execute()

    def _compiled_event(self, name: str, version: int | None = None) -> CompiledEvent:
        """``version`` of the event ``name``; the latest when ``version`` is None."""
        return inbound.compiled_event(self.plan, name, version)

    def _flow(self, name: str) -> CompiledFlow:
        flow = self.plan.flows.get(name)
        if flow is None:
            raise UnknownNameError(f"no flow {name!r} is defined{_near(name, self.plan.flows)}")
        return flow


def _policy(retry: Any, on_failure: Any) -> RetryPolicy:
    if retry is None:
        return RetryPolicy(on_failure=on_failure)
    return RetryPolicy(
        max_attempts=retry.max_attempts,
        backoff_s=retry.backoff_s,
        max_backoff_s=retry.max_backoff_s,
        on_failure=on_failure,
    )


async def _finish(uow: UnitOfWork, run: Run) -> Run:
    if run.succeeded:
        await uow.commit()
    else:
        await uow.rollback()
    return run


def _envelope(instance: EventInstance) -> FrozenDict:
    return FrozenDict(
        id=instance.id,
        type=instance.type,
        version=instance.version,
        source=instance.source,
        time=instance.time,
        data=instance.data,
        correlation_id=instance.correlation_id,
        causation_id=instance.causation_id,
        depth=instance.depth,
    )


def _near(name: str, names: Mapping[str, Any]) -> str:
    near = difflib.get_close_matches(name, list(names), n=3)
    return f"; did you mean: {', '.join(near)}?" if near else ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
