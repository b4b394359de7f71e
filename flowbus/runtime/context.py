"""The state of one run while it executes, and the view of it each step action gets."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from flowbus.errors import FlowbusError, LimitExceeded, Rejected, StepFailed
from flowbus.events.frozen import FrozenDict, freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import new_id
from flowbus.runtime.plan import CompiledFlow, CompiledStep, StepFn
from flowbus.runtime.records import Message, Run, RunStatus, StepRun, StepStatus, Trigger
from flowbus.stores.protocols import EntityStore, UnitOfWork

if TYPE_CHECKING:
    from flowbus.runtime.engine import RuntimeLimits
    from flowbus.runtime.plan import Plan
    from flowbus.runtime.values import Value


class RunHost(Protocol):
    """What a running flow needs from the engine that started it."""

    plan: Plan
    limits: RuntimeLimits

    def action(self, name: str) -> StepFn: ...

    async def publish_from(self, run: RunContext, event: str, properties: Mapping[str, Any]) -> EventInstance: ...

    async def call_from(self, run: RunContext, flow: str, inputs: Mapping[str, Any]) -> Run: ...


#: what caused a run: the event instance a handler runs for, or a source message
Origin = EventInstance | Message | None


class RunContext:
    """One run of one flow: its scope, its journal of step runs, its outputs."""

    __slots__ = (
        "call_depth", "data", "flow", "handler", "host", "id", "origin", "outputs",
        "parent_run_id", "scope", "step_count", "step_runs", "steps", "trigger", "uow", "vars",
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
    ) -> None:
        self.id = new_id()
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
        inputs = data if trigger is not Trigger.MESSAGE else FrozenDict()
        self.scope: dict[str, Any] = {
            "data": data, "event": envelope, "inputs": inputs, "steps": self.steps, "vars": self.vars,
        }  # fmt: skip

    async def execute(self) -> Run:
        """Run every step in order; the run record says how it ended. The record joins the unit of work."""
        started_at = dt.datetime.now(dt.UTC)
        start = time.perf_counter()
        status = RunStatus.SUCCEEDED
        error: str | None = None
        try:
            await self.run_steps(self.flow.steps, self.scope, "")
        except Rejected as exc:
            status, error = RunStatus.REJECTED, exc.message
        except FlowbusError as exc:
            # the innermost failed step says where it went wrong; it is journaled first
            failed = next((s for s in self.step_runs if s.status is StepStatus.FAILED), None)
            status, error = RunStatus.FAILED, failed.error if failed is not None else exc.message
        run = Run(
            id=self.id,
            flow=self.flow.name,
            trigger=self.trigger,
            status=status,
            started_at=started_at,
            duration_s=time.perf_counter() - start,
            inputs=self.data,
            outputs=freeze(self.outputs),
            steps=tuple(self.step_runs),
            error=error,
            handler=self.handler,
            event_id=self.origin.id if isinstance(self.origin, EventInstance) else None,
            message_id=self.origin.id if isinstance(self.origin, Message) else None,
            parent_run_id=self.parent_run_id,
        )
        self.uow.add_run(run)
        return run

    async def run_steps(self, steps: tuple[CompiledStep, ...], scope: dict[str, Any], prefix: str) -> None:
        for step in steps:
            await self._run_step(step, scope, prefix)

    async def _run_step(self, step: CompiledStep, scope: dict[str, Any], prefix: str) -> None:
        self.step_count += 1
        limit = self.host.limits.max_step_runs
        if self.step_count > limit:
            raise LimitExceeded(f"the run executed more than {limit:,} steps (max_step_runs)")
        key = prefix + step.id
        start = time.perf_counter()
        params: Any = None
        try:
            params = step.params.evaluate(scope)
            output = await self.host.action(step.action)(StepContext(self, step, scope, key), params)
        except FlowbusError as exc:
            status = StepStatus.REJECTED if isinstance(exc, Rejected) else StepStatus.FAILED
            self._record(step, key, status, params, None, exc.message, start)
            raise
        except Exception as exc:  # a custom action's own error: recorded, and it fails the run
            message = f"{type(exc).__name__}: {exc}"
            self._record(step, key, StepStatus.FAILED, params, None, message, start)
            raise StepFailed(message) from exc
        self._record(step, key, StepStatus.SUCCEEDED, params, output, None, start)
        self.steps[step.id] = output

    def _record(
        self,
        step: CompiledStep,
        key: str,
        status: StepStatus,
        params: Any,
        output: Any,
        error: str | None,
        start: float,
    ) -> None:
        if error is not None:
            error = f"step {key!r} ({step.action}): {error}" if not error.startswith("step '") else error
        self.step_runs.append(
            StepRun(
                key=key,
                step_id=step.id,
                action=step.action,
                status=status,
                input=params,
                output=output,
                error=error,
                duration_s=time.perf_counter() - start,
            )
        )


class StepContext:
    """What a step action sees: its step, the run's scope and services."""

    __slots__ = ("key", "run", "scope", "step")

    def __init__(self, run: RunContext, step: CompiledStep, scope: dict[str, Any], key: str) -> None:
        self.run = run
        self.step = step
        self.scope = scope
        self.key = key

    @property
    def entities(self) -> EntityStore:
        return self.run.uow.entities

    @property
    def idempotency_key(self) -> str:
        """Stable across retries of this step in this run: ``run_id:step_key``."""
        return f"{self.run.id}:{self.key}"

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

    async def publish(self, event: str, properties: Mapping[str, Any]) -> EventInstance:
        return await self.run.host.publish_from(self.run, event, properties)

    async def call(self, flow: str, inputs: Mapping[str, Any]) -> Run:
        return await self.run.host.call_from(self.run, flow, inputs)
