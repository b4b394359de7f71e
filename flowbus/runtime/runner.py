"""The runner: runs one compiled config version's flows, handlers and publishes into units of work.

Sync handlers run inside the publisher's unit of work, in registration order, and async handlers
are queued in it as outbound messages: if the publisher rolls back, no handler effect and no
queued message survives (design §4, transactional outbox). Queued work is run by
:mod:`flowbus.worker`, which hands each claimed message to :meth:`Runner.process`.

A runner holds a plan, the action registry, the limits and the store runs read from; it commits
nothing itself (its callers do). A new config version is a new runner over the same registry
and store (:meth:`Runner.switched`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence, Set
from typing import Any

from flowbus.codec import encode
from flowbus.config.plan import CompiledDebounce, CompiledEvent, CompiledFlow, CompiledHandler, Plan
from flowbus.errors import (
    ChainLimitExceeded,
    LimitExceeded,
    Rejected,
    RunFailed,
    StepFailed,
    UnknownNameError,
    did_you_mean,
)
from flowbus.events.frozen import FrozenDict, freeze
from flowbus.events.instance import EventInstance
from flowbus.expr import ExpressionError
from flowbus.ids import new_id
from flowbus.limits import bounded_key
from flowbus.queue import Debounce, MessageKind, OutgoingMessage, QueuedMessage, QueueName, RetryPolicy
from flowbus.runtime.actions.http_clients import HttpClients
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.changes import RunStore
from flowbus.runtime.context import NO_SOURCE, Origin, RunContext, RunSource, StepFn, TracedRunContext
from flowbus.runtime.inbound import compiled_event
from flowbus.runtime.records import Message, Run, RunStatus, Trigger
from flowbus.runtime.registry import ActionRegistry
from flowbus.runtime.routing import Unmatched, unmatched
from flowbus.runtime.unit_of_work import UnitOfWork
from flowbus.telemetry import current_carrier, tracing

#: event instances and unmatched pairs kept by a runner (both come from outside: bounded)
_MEMO_SIZE = 256


class Runner:
    """Runs the flows of one plan; the :class:`~flowbus.runtime.context.RunHost` of its runs."""

    def __init__(
        self,
        plan: Plan,
        *,
        store: RunStore,
        actions: ActionRegistry | None = None,
        limits: RuntimeLimits | None = None,
        config_version: int | None = None,
        http_clients: HttpClients | None = None,
    ) -> None:
        self._plan = plan
        #: the pooled clients of the http targets, kept by the runners of later versions
        self.http_clients = http_clients if http_clients is not None else HttpClients()
        self._store = store
        self.registry = actions if actions is not None else ActionRegistry()
        self._limits = limits or RuntimeLimits()
        self.config_version = config_version
        # event instances never change, and an event's async handlers are usually queued (and
        # claimed) together: a small memo saves reading the same event once per handler
        self._recent_events: dict[str, tuple[EventInstance, FrozenDict]] = {}
        # a source that sends a type nobody handles sends it again and again: the nearest pairs
        # (difflib over every route) are worked out once a pair
        self._unmatched: dict[tuple[str, str], Unmatched] = {}
        # runs make spans only when OTEL_* asks for traces: otherwise not even a check a step
        self._run_context = RunContext if tracing() is None else TracedRunContext

    def switched(self, plan: Plan, config_version: int | None) -> Runner:
        """A runner of another config version, with the same store, actions and limits."""
        return Runner(
            plan, store=self._store, actions=self.registry, limits=self._limits, config_version=config_version,
            http_clients=self.http_clients,
        )  # fmt: skip

    # -- RunHost -------------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def limits(self) -> RuntimeLimits:
        return self._limits

    @property
    def store(self) -> RunStore:
        return self._store

    @property
    def actions(self) -> Mapping[str, StepFn]:
        return self.registry.by_name

    def action(self, name: str) -> StepFn:
        return self.registry.get(name)

    @property
    def unjournaled(self) -> Set[str]:
        return self.registry.unjournaled

    async def publish_from(
        self,
        run: RunContext,
        event: str,
        properties: Mapping[str, Any],
        *,
        step_key: str,
        version: int | None = None,
    ) -> EventInstance:
        return await self.publish(
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
        if run.call_depth >= self._limits.max_call_depth:
            raise LimitExceeded(f"calls nest deeper than {self._limits.max_call_depth} (max_call_depth)")
        flow = self.flow(flow_name)
        values = {**flow.input_defaults, **flow.inputs.validate(inputs)}
        ctx = self._run_context(
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

    # -- what a message, a publisher or a caller asks for -------------------------------

    async def process(self, message: QueuedMessage, uow: UnitOfWork) -> list[Run]:
        """Run what a claimed message asks for, into ``uow``; the caller commits or retries.

        A source message runs all its trigger flows in the one unit of work, so that a retry
        never repeats a flow whose effects were already committed.
        """
        source = RunSource(message=message, config_version=self.config_version)
        body = message.body
        if message.kind is MessageKind.HANDLER:
            handler = self._plan.handlers.get(body["handler"])
            found = await self._event(body["event_id"])
            if handler is None or found is None:
                raise StepFailed(
                    f"message {message.id} names handler {body['handler']!r} and event {body['event_id']!r}; "
                    "the active config or the event store has no such thing"
                )
            instance, envelope = found
            return [await self._run_handler(uow, handler, instance, envelope, None, source)]
        if message.kind is MessageKind.EVENT:
            await self.publish(
                uow, body["event"], body["properties"], origin=None, source=body["source"], parent=None,
                parent_source=source, version=body.get("version"),
            )  # fmt: skip
            return list(uow.runs)
        if message.kind is MessageKind.FLOW:
            return [await self.run_flow(uow, body["flow"], body["inputs"], source=source, trigger=Trigger.SCHEDULE)]
        incoming = Message(
            id=message.id, source=body["source"], type=body["type"], data=freeze(body["data"]), time=message.created_at
        )
        return [
            await self.run_trigger(uow, flow, incoming, source)
            for flow in self._plan.routes.get((incoming.source, incoming.type), ())
        ]

    async def run_trigger(self, uow: UnitOfWork, flow: CompiledFlow, message: Message, source: RunSource) -> Run:
        """Run a trigger flow for a source message."""
        envelope = FrozenDict(id=message.id, source=message.source, type=message.type, time=message.time)
        ctx = self._run_context(
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

    async def run_flow(
        self,
        uow: UnitOfWork,
        name: str,
        inputs: Mapping[str, Any],
        *,
        source: RunSource = NO_SOURCE,
        trigger: Trigger = Trigger.DIRECT,
    ) -> Run:
        """Run a logic flow with typed inputs (checked here) into ``uow``; ``source``: the queued
        message it runs for (a schedule's tick), whose attempts share a journal."""
        flow = self.flow(name)
        values = {**flow.input_defaults, **flow.inputs.validate(inputs)}
        ctx = self._run_context(
            self, uow, flow, trigger=trigger, data=freeze(values), origin=None, envelope=FrozenDict(),
            source=source.nested(flow.name),
        )  # fmt: skip
        return await ctx.execute()

    async def publish(
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
        """Publish ``version`` of ``event`` (the latest when None) into ``uow``: its sync handlers
        run now, its async handlers are queued. Raises :class:`Rejected` or :class:`RunFailed`
        when a sync handler refuses or fails (the caller rolls back)."""
        compiled = self.compiled_event(event, version)
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
        # async handlers run in the publisher's trace: the active span's (the publish step), else
        # the one its message came in
        trace_context = (current_carrier() or run_source.trace_context) if subscribers.async_ else None
        key_scope: dict[str, Any] | None = None
        for handler in subscribers.async_:
            # one message per (event, handler): its dedup id says so, so a retried publisher cannot double it
            body = {"handler": handler.name, "event_id": instance.id}
            debounce = (
                _burst(handler.name, handler.debounce, instance, group_key) if handler.debounce is not None else None
            )
            message = OutgoingMessage(
                QueueName.OUTBOUND,
                MessageKind.HANDLER,
                body,
                group_key,
                f"{instance.id}/{handler.name}" if debounce is None else None,
                self.config_version,
                trace_context=trace_context,
                debounce=debounce,
            )
            if handler.flow_control is not None:
                # its keys and limits, worked out now, where the event is at hand (flowbus.limits)
                key_scope = key_scope or {"event": _envelope(instance), "data": instance.data}
                message = handler.flow_control.stamp(message, key_scope)
            uow.enqueue(message)
        return instance

    # -- what the worker asks about a message -------------------------------------------

    async def read_events_of(self, messages: Sequence[QueuedMessage]) -> None:
        """Read the events that a claimed batch's handler messages run for, in one read, into the
        memo :meth:`process` reads them from: a batch holds the handler messages of a few dozen
        events, and a read per event cost more than running its handlers did."""
        needed = {m.body["event_id"] for m in messages if m.kind is MessageKind.HANDLER}
        memo = self._recent_events
        wanted = needed.difference(memo)
        found = await self._store.get_events(sorted(wanted)) if wanted else ()
        # room is made by the oldest events the batch does not need: a batch keeps all of its own
        # until its runs have read them, however many (the memo is its size again by the next batch)
        excess = len(memo) + len(found) - _MEMO_SIZE
        if excess > 0:
            for event_id in [k for k in memo if k not in needed][:excess]:
                del memo[event_id]
        for instance in found:
            memo[instance.id] = (instance, _envelope(instance))

    def unmatched(self, message: QueuedMessage) -> Unmatched | None:
        """Why a source message would run nothing: its pair has no enabled trigger flow. None when it
        has one, and for handler and event messages (an event without subscribers is normal)."""
        if message.kind is not MessageKind.SOURCE:
            return None
        pair = (message.body["source"], message.body["type"])
        if pair in self._plan.routes:
            return None
        found = self._unmatched.get(pair)
        if found is None:
            if len(self._unmatched) >= _MEMO_SIZE:
                self._unmatched.clear()
            found = self._unmatched[pair] = unmatched(self._plan.routes, *pair)
        return found

    def retry_policy(self, message: QueuedMessage) -> RetryPolicy:
        """The policy of the handler or flows a message runs (the strictest when several)."""
        body = message.body
        if message.kind is MessageKind.HANDLER:
            handler = self._plan.handlers.get(body.get("handler", ""))
            if handler is None:
                return RetryPolicy()
            flow = handler.flow.model
            return _policy(handler.model.retry or flow.retry, flow.on_failure)
        if message.kind is MessageKind.FLOW:
            found = self._plan.flows.get(body.get("flow", ""))
            return _policy(found.model.retry, found.model.on_failure) if found is not None else RetryPolicy()
        flows = self._plan.routes.get((body.get("source", ""), body.get("type", "")), ())
        policies = [_policy(f.model.retry, f.model.on_failure) for f in flows] or [RetryPolicy()]
        return max(policies, key=lambda p: (p.on_failure == "block", p.max_attempts))

    # -- lookups -------------------------------------------------------------------------

    def compiled_event(self, name: str, version: int | None = None) -> CompiledEvent:
        """``version`` of the event ``name``; the latest when ``version`` is None."""
        return compiled_event(self._plan, name, version)

    def flow(self, name: str) -> CompiledFlow:
        flow = self._plan.flows.get(name)
        if flow is None:
            raise UnknownNameError(f"no flow {name!r} is defined{did_you_mean(name, self._plan.flows)}")
        return flow

    # -- internals -----------------------------------------------------------------------

    async def _event(self, event_id: str) -> tuple[EventInstance, FrozenDict] | None:
        """The instance and its envelope (what a run's ``event`` reads), both kept in the memo."""
        found = self._recent_events.get(event_id)
        if found is None:
            instance = await self._store.get_event(event_id)
            if instance is None:
                return None
            if len(self._recent_events) >= _MEMO_SIZE:
                del self._recent_events[next(iter(self._recent_events))]
            found = self._recent_events[event_id] = (instance, _envelope(instance))
        return found

    def _chain(self, instance_id: str, name: str, origin: Origin) -> tuple[str, str | None, int]:
        """``(correlation_id, causation_id, depth)`` of a new instance published because of ``origin``."""
        if origin is None:
            return instance_id, None, 0
        if isinstance(origin, EventInstance):
            correlation_id, depth = origin.correlation_id, origin.depth + 1
        else:
            correlation_id, depth = origin.id, 1
        if depth > self._limits.max_chain_depth:
            raise ChainLimitExceeded(
                f"publishing {name} would make an event chain {depth} deep; the limit is "
                f"{self._limits.max_chain_depth} (max_chain_depth). Does a handler publish the event that triggers it?"
            )
        return correlation_id, origin.id, depth

    async def _count_in_chain(self, uow: UnitOfWork, correlation_id: str, name: str, origin: Origin) -> None:
        """Refuse an event past the events its root may cause: a fan-out grows in breadth as well
        as in depth, and a chain within its depth may still be thousands of events wide."""
        # a chain caused by a source message begins in this unit of work: nothing of it is stored yet
        caused = await uow.caused(correlation_id, stored=isinstance(origin, EventInstance))
        if caused >= self._limits.max_chain_events:
            raise ChainLimitExceeded(
                f"publishing {name} would make root {correlation_id} cause more than "
                f"{self._limits.max_chain_events:,} events (max_chain_events). Does a handler publish more "
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
        ctx = self._run_context(
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


def _burst(handler: str, debounce: CompiledDebounce, instance: EventInstance, group_key: str | None) -> Debounce:
    """The burst of ``handler`` that its message for ``instance`` joins: the handler's, in the
    message's FIFO group, for the value of its key (text as it is, anything else as JSON; a long
    value by its digest, so that a key stays short whatever the event holds).

    ``<handler>/<value>`` without a group, ``<handler>@<group as JSON>/<value>`` with one: a burst
    never folds events of two groups, whose order would then break, and a handler name holds no
    ``@`` or ``/``, nor a JSON string an unescaped ``"``, so no two of these keys are the same text.
    """
    text = ""
    if debounce.key is not None:
        try:
            value = debounce.key.evaluate({"event": _envelope(instance)})
        except ExpressionError as error:
            raise StepFailed(f"the debounce key of handler {handler!r} failed on {instance.type}: {error}") from None
        text = bounded_key(value if isinstance(value, str) else encode(value))
    if group_key is None:
        return Debounce(f"{handler}/{text}", debounce.period_s, debounce.max_wait_s)
    return Debounce(f"{handler}@{bounded_key(encode(group_key))}/{text}", debounce.period_s, debounce.max_wait_s)


def _policy(retry: Any, on_failure: Any) -> RetryPolicy:
    if retry is None:
        return RetryPolicy(on_failure=on_failure)
    return RetryPolicy(
        max_attempts=retry.max_attempts,
        backoff_s=retry.backoff_s,
        max_backoff_s=retry.max_backoff_s,
        on_failure=on_failure,
    )


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
