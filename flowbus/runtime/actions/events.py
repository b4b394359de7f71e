"""The publish action: a flow publishes an event instance (Publish Event)."""

from __future__ import annotations

from typing import Any

from flowbus.config.plan import PublishedVersion
from flowbus.config.steps import PublishStep
from flowbus.delays import not_before
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.context import StepContext
from flowbus.runtime.inbound import event_message
from flowbus.telemetry import current_carrier


@builtin_action(PublishStep)
async def publish(ctx: StepContext, params: dict[str, Any]) -> Any:
    model = ctx.step.model_as(PublishStep)
    event = model.event
    # the plan fixed the version the step publishes: the one it names, or the config's latest
    version = ctx.step.extra_as(PublishedVersion).version
    if model.delayed:
        return _queue(ctx, event, params, version)
    instance = await ctx.publish(event, params["properties"], version=version)
    return {
        "event_id": instance.id,
        "type": instance.type,
        "correlation_id": instance.correlation_id,
    }


def _queue(ctx: StepContext, event: str, params: dict[str, Any], version: int | None) -> Any:
    """A delayed publish: the event is checked now and queued, in the run's unit of work and its
    FIFO group, for a worker to publish when it is due."""
    run = ctx.run
    field = "delay" if params["delay"] is not None else "not_before"
    when = not_before(params["delay"], params["not_before"], field=f"{ctx.key}.{field}")
    source = run.source
    # in the run's trace, as the messages of its immediate publishes are (Runner.publish)
    message = event_message(
        run.host.plan, event, params["properties"], f"flow/{run.flow.name}", source.group_key, None, version,
        config_version=source.config_version, trace_context=current_carrier() or source.trace_context,
    )._replace(not_before=when)  # fmt: skip
    run.uow.enqueue(message)
    return {"type": event, "queued": True, "not_before": when}
