"""The state of one run while it executes, and the view of it each step action gets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Set
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from flowbus.config.plan import CompiledFlow, CompiledStep
from flowbus.errors import (
    Deferred,
    EventValidationError,
    FlowbusError,
    LimitExceeded,
    Rejected,
    StepFailed,
    StoreUnavailable,
)
from flowbus.events.frozen import FrozenDict, freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import new_id
from flowbus.queue import QueuedMessage
from flowbus.runtime.bounds import bounded_steps, compact_after, cut_count
from flowbus.runtime.records import Message, Run, RunStatus, StepRun, StepStatus, Trigger
from flowbus.telemetry import tracing

if TYPE_CHECKING:
    from flowbus.config.plan import Plan
    from flowbus.config.values import Value
    from flowbus.runtime.actions.http_clients import HttpClients
    from flowbus.runtime.bounds import RuntimeLimits
    from flowbus.runtime.changes import RunStore
    from flowbus.runtime.unit_of_work import UnitOfWork


_NO_OUTPUTS = FrozenDict()

#: the one callable type every step action has: evaluated params in, the step's output out
StepFn = Callable[["StepContext", dict[str, Any]], Awaitable[Any]]


class RunHost(Protocol):
    """What a running flow needs from the runner that started it."""

    @property
    def plan(self) -> Plan: ...

    @property
    def limits(self) -> RuntimeLimits: ...

    @property
    def store(self) -> RunStore:
        """Where a step with an external effect is journaled the moment it finishes."""

    @property
    def actions(self) -> Mapping[str, StepFn]:
        """Registered actions by name, built-in and custom."""

    def action(self, name: str) -> StepFn:
        """The action named ``name``; raises a clear error when none is registered."""

    @property
    def http_clients(self) -> HttpClients:
        """The pooled clients of the http targets."""

    @property
    def unjournaled(self) -> Set[str]:
        """Custom actions that only compute (registered with ``effects="none"``): not journaled."""

    async def publish_from(
        self,
        run: RunContext,
        event: str,
        properties: Mapping[str, Any],
        *,
        step_key: str,
        version: int | None = None,
    ) -> EventInstance: ...

    async def call_from(self, run: RunContext, flow: str, inputs: Mapping[str, Any], *, step_key: str) -> Run: ...


#: what caused a run: the event instance a handler runs for, or a source message
Origin = EventInstance | Message | None


class RunSource(NamedTuple):
    """Where a run's work came from: the queued message it runs for, and the config version."""

    message: QueuedMessage | None = None
    config_version: int | None = None
    #: the same for every attempt at the same work: journal entries and idempotency keys use it
    execution_key: str | None = None

    @property
    def group_key(self) -> str | None:
        return self.message.group_key if self.message is not None else None

    @property
    def trace_context(self) -> str | None:
        """The trace context the message was sent in, as stored."""
        return self.message.trace_context if self.message is not None else None

    def nested(self, name: str) -> RunSource:
        """The source of a run inside this one (a flow of a message, a handler, a called flow)."""
        base = self.execution_key or (self.message.id if self.message is not None else None)
        # built directly: a NamedTuple's _replace costs several times more, on every run
        return RunSource(self.message, self.config_version, f"{base}/{name}" if base is not None else None)


#: a run started directly (not for a queued message), outside any config version
NO_SOURCE = RunSource()


class RunContext:
    """One run of one flow: its scope, its journal of step runs, its outputs."""

    __slots__ = (
        "actions", "call_depth", "check_at", "data", "flow", "handler", "host", "id", "max_step_runs", "origin",
        "outputs", "parent_run_id", "scope", "source", "step_count", "step_runs", "steps", "trigger", "unjournaled",
        "uow", "vars",
    )  # fmt: skip

    def __init__(
        self,
        host: RunHost,
        uow: UnitOfWork,
        flow: CompiledFlow,
        *,
        trigger: Trigger,
        data: Any,
        origin: Origin,
        envelope: Mapping[str, Any],
        handler: str | None = None,
        parent_run_id: str | None = None,
        call_depth: int = 0,
        source: RunSource = NO_SOURCE,
    ) -> None:
        self.id = new_id()
        self.source = source
        self.host = host
        self.uow = uow
        self.flow = flow
        self.trigger = trigger
        self.data = data
        self.origin = origin
        self.handler = handler
        self.parent_run_id = parent_run_id
        self.call_depth = call_depth
        self.steps: dict[str, Any] = {}
        self.vars: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.step_runs: list[StepRun] = []
        self.step_count = 0
        limits = host.limits
        self.max_step_runs = limits.max_step_runs
        # the step count at which the journal is next cut down to its bound (or the run stops)
        self.check_at = min(self.max_step_runs, compact_after(limits))
        self.actions = host.actions
        self.unjournaled = host.unjournaled
        inputs = data if trigger is not Trigger.MESSAGE else FrozenDict()
        self.scope: dict[str, Any] = {
            "data": data, "event": envelope, "inputs": inputs, "steps": self.steps, "vars": self.vars,
        }  # fmt: skip

    async def execute(self) -> Run:
        """Run every step in order; the run record says how it ended. The record joins the unit of work."""
        started_at = dt.datetime.now(dt.UTC)
        start = perf_counter()
        status = RunStatus.SUCCEEDED
        error: str | None = None
        deferred: Deferred | None = None
        try:
            if self.trigger is Trigger.HANDLER and not self.flow.required_inputs <= self.data.keys():
                missing = ", ".join(sorted(self.flow.required_inputs - self.data.keys()))
                raise EventValidationError(
                    f"flow {self.flow.name} inputs", {missing: "required, but the event has no value for it"}
                )
            # the top-level steps run here rather than through run_steps: one coroutine less a run
            scope = self.scope
            for step in self.flow.steps:
                await self._run_step(step, scope, "")
        except Rejected as exc:
            status, error = RunStatus.REJECTED, exc.message
        except Deferred as exc:
            # not a failure: the message is given back, and the run shows why until it runs again
            status, error, deferred = RunStatus.THROTTLED, exc.message, exc
        except StoreUnavailable:
            # the store is away, which says nothing of the run: no record, the message runs again
            raise
        except FlowbusError as exc:
            # caught here, so the worker learns it from the unit of work, not from the exception
            self.uow.permanent |= exc.permanent
            # the innermost failed step says where it went wrong; it is journaled first
            failed = next((s for s in self.step_runs if s.status is StepStatus.FAILED), None)
            where = f"step {failed.key!r} ({failed.action}): " if failed is not None else ""
            status, error = RunStatus.FAILED, f"{where}{failed.error if failed is not None else exc.message}"
        source = self.source
        # positional, in Run's field order: a NamedTuple built from keywords costs more, on every run
        run = Run(
            self.id,
            self.flow.name,
            self.trigger,
            status,
            started_at,
            perf_counter() - start,
            self.data,
            freeze(self.outputs) if self.outputs else _NO_OUTPUTS,
            bounded_steps(self.step_runs, self.host.limits),
            error,
            self.handler,
            self.origin.id if isinstance(self.origin, EventInstance) else None,  # event_id
            self._message_id(),
            self.parent_run_id,
            source.config_version,
            source.message.attempts + 1 if source.message is not None else 1,  # attempt
        )
        self.uow.add_run(run)
        if deferred is not None:
            raise deferred
        return run

    def _message_id(self) -> str | None:
        if self.source.message is not None:
            return self.source.message.id
        return self.origin.id if isinstance(self.origin, Message) else None

    async def run_steps(self, steps: tuple[CompiledStep, ...], scope: dict[str, Any], prefix: str) -> None:
        for step in steps:
            await self._run_step(step, scope, prefix)

    async def _run_step(self, step: CompiledStep, scope: dict[str, Any], prefix: str) -> None:
        # the per-step path of every run: kept to plain local operations on purpose
        self.step_count += 1
        if self.step_count > self.check_at:
            self._check_bounds()
        key = prefix + step.id if prefix else step.id
        start = perf_counter()
        params: Any = None
        # a step whose effects reach outside the unit of work (http, custom actions) is journaled the
        # moment it finishes (durable steps, design §4); the others' effects are in the changeset
        journal = self.source.execution_key if step.journaled and step.action not in self.unjournaled else None
        try:
            params = step.params.evaluate(scope)
            if journal is not None:
                done, output = await self.host.store.journaled_output(journal, key)
                if done:
                    self._replayed(step, key, params, output, start)
                    return
            action = self.actions.get(step.action) or self.host.action(step.action)
            output = await action(StepContext(self, step, scope, key), params)
            if journal is not None:
                await self.host.store.journal_step(journal, key, output)
        except FlowbusError as exc:
            status = StepStatus.REJECTED if isinstance(exc, Rejected) else StepStatus.FAILED
            if isinstance(exc, Deferred):
                status = StepStatus.THROTTLED
            self.step_runs.append(
                StepRun(key, step.id, step.action, status, params, None, exc.message, perf_counter() - start)
            )
            raise
        except Exception as exc:  # a custom action's own error: recorded, and it fails the run
            message = f"{type(exc).__name__}: {exc}"
            self.step_runs.append(
                StepRun(key, step.id, step.action, StepStatus.FAILED, params, None, message, perf_counter() - start)
            )
            raise StepFailed(message) from exc
        self.step_runs.append(
            StepRun(key, step.id, step.action, StepStatus.SUCCEEDED, params, output, None, perf_counter() - start)
        )
        self.steps[step.id] = output

    def _check_bounds(self) -> None:
        """Stop a run past ``max_step_runs``; else cut its journal down to the trace's bound, so that
        a long run holds a bounded journal while it runs, not only once stored."""
        if self.step_count > self.max_step_runs:
            raise LimitExceeded(f"the run executed more than {self.max_step_runs:,} steps (max_step_runs)")
        limits = self.host.limits
        self.step_runs = cut_count(self.step_runs, limits.max_trace_steps)
        self.check_at = min(self.max_step_runs, self.step_count + compact_after(limits))

    def _replayed(self, step: CompiledStep, key: str, params: Any, output: Any, start: float) -> None:
        self.step_runs.append(
            StepRun(key, step.id, step.action, StepStatus.REPLAYED, params, output, None, perf_counter() - start)
        )
        self.steps[step.id] = output


class TracedRunContext(RunContext):
    """A run that makes spans, one for itself and one for each step (when ``OTEL_*`` asks for
    traces): the runner picks this class then, so an untraced run pays nothing for tracing."""

    #: whether the run's span records: the steps of a run sampled out make no spans
    __slots__ = ("recording",)

    async def execute(self) -> Run:
        traces = tracing()
        if traces is None:  # pragma: no cover - the runner makes traced runs only with tracing on
            return await super().execute()
        # a run at the top of its message continues the trace the message was sent in; a nested
        # run (a sync handler, a called flow) is a child of the step that started it
        parent = traces.context_of(self.source.trace_context) if self.parent_run_id is None else None
        if traces.sampled_out(parent) is not None:  # no span, and none for its steps
            self.recording = False
            with traces.span("", {}, parent=parent):  # the trace's context stays active for what goes on
                return await super().execute()
        origin = self.origin
        event = origin if isinstance(origin, EventInstance) else None
        message = self.source.message
        attributes = {
            "flowbus.run_id": self.id, "flowbus.flow": self.flow.name, "flowbus.handler": self.handler,
            "flowbus.trigger": self.trigger.value, "flowbus.message_id": self._message_id(),
            "flowbus.event_id": event.id if event is not None else None,
            "flowbus.correlation_id": event.correlation_id if event is not None else None,
            "flowbus.parent_run_id": self.parent_run_id, "flowbus.config_version": self.source.config_version,
            "flowbus.attempt": message.attempts + 1 if message is not None else 1,
        }  # fmt: skip
        name = f"handler {self.handler}" if self.handler is not None else f"flow {self.flow.name}"
        with traces.span(name, attributes, parent=parent) as span:
            self.recording = span.is_recording()
            run = await super().execute()
            span.set_attribute("flowbus.run.status", run.status.value)
            if run.status is not RunStatus.SUCCEEDED:
                traces.failed(span, run.error or run.status.value)
        traces.ran(run.id, span)
        return run

    async def _run_step(self, step: CompiledStep, scope: dict[str, Any], prefix: str) -> None:
        traces = tracing()
        if traces is None or not self.recording:
            return await super()._run_step(step, scope, prefix)
        key = prefix + step.id if prefix else step.id
        attributes = {"flowbus.step": key, "flowbus.step.action": step.action, "flowbus.run_id": self.id}
        with traces.span(f"step {key}", attributes) as span:
            await super()._run_step(step, scope, prefix)
            span.set_attribute("flowbus.step.status", self.step_runs[-1].status.value)
        return None


class StepContext:
    """What a step action sees: its step, the run's scope and services."""

    __slots__ = ("key", "run", "scope", "step")

    def __init__(self, run: RunContext, step: CompiledStep, scope: dict[str, Any], key: str) -> None:
        self.run = run
        self.step = step
        self.scope = scope
        self.key = key

    @property
    def entities(self) -> UnitOfWork:
        """Entity records as this run sees them: committed state plus its own writes."""
        return self.run.uow

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt at this step: ``<execution key>:<step key>``.

        For queued work the execution key names the message and the flow, so a retry sends the
        same key; a run started directly (no retries) uses its run id.
        """
        return f"{self.run.source.execution_key or self.run.id}:{self.key}"

    @property
    def limits(self) -> RuntimeLimits:
        return self.run.host.limits

    def evaluate(self, value: Value) -> Any:
        return value.evaluate(self.scope)

    async def run_block(self, name: str, **bindings: Any) -> None:
        """Run a nested block of this step (``then``, ``steps``...), with extra variables bound."""
        scope = {**self.scope, **bindings} if bindings else self.scope
        suffix = f"[{bindings['index']}]" if "index" in bindings else ""
        await self.run.run_steps(self.step.blocks[name], scope, f"{self.key}{suffix}.")

    async def publish(self, event: str, properties: Mapping[str, Any], *, version: int | None = None) -> EventInstance:
        """Publish ``version`` of ``event`` (default: the latest) from this step's run."""
        return await self.run.host.publish_from(self.run, event, properties, step_key=self.key, version=version)

    async def call(self, flow: str, inputs: Mapping[str, Any]) -> Run:
        return await self.run.host.call_from(self.run, flow, inputs, step_key=self.key)
