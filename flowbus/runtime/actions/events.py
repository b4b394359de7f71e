"""The publish action: a flow publishes an event instance (Publish Event)."""

from __future__ import annotations

from typing import Any

from flowbus.config.plan import PublishedVersion
from flowbus.config.steps import PublishStep
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.context import StepContext


@builtin_action(PublishStep)
async def publish(ctx: StepContext, params: dict[str, Any]) -> Any:
    event = ctx.step.model_as(PublishStep).event
    # the plan fixed the version the step publishes: the one it names, or the config's latest
    version = ctx.step.extra_as(PublishedVersion).version
    instance = await ctx.publish(event, params["properties"], version=version)
    return {
        "event_id": instance.id,
        "type": instance.type,
        "correlation_id": instance.correlation_id,
    }
