"""The publish action: a flow publishes an event instance (Publish Event)."""

from __future__ import annotations

from typing import Any

from flowbus.runtime.context import StepContext


async def publish(ctx: StepContext, params: dict[str, Any]) -> Any:
    event = getattr(ctx.step.model, "event", "")
    # the plan fixed the version the step publishes: the one it names, or the config's latest
    version = ctx.step.extra[0] if ctx.step.extra else None
    instance = await ctx.publish(event, params["properties"], version=version)
    return {
        "event_id": instance.id,
        "type": instance.type,
        "correlation_id": instance.correlation_id,
    }
