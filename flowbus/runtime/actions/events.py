"""The publish action: a flow publishes an event instance (Publish Event)."""

from __future__ import annotations

from typing import Any

from flowbus.runtime.context import StepContext


async def publish(ctx: StepContext, params: dict[str, Any]) -> Any:
    event = getattr(ctx.step.model, "event", "")
    instance = await ctx.publish(event, params["properties"])
    return {
        "event_id": instance.id,
        "type": instance.type,
        "correlation_id": instance.correlation_id,
    }
