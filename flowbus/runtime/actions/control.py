"""Actions that steer a run: if, switch, foreach, call."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flowbus.config.plan import SwitchCases
from flowbus.config.steps import CallStep, ForeachStep, IfStep, SwitchStep
from flowbus.config.values import type_name
from flowbus.errors import LimitExceeded, Rejected, StepFailed
from flowbus.events.frozen import freeze
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.context import StepContext
from flowbus.runtime.records import RunStatus


@builtin_action(IfStep)
async def if_(ctx: StepContext, params: dict[str, Any]) -> Any:
    condition = params["condition"]
    if not isinstance(condition, bool):
        raise StepFailed(f"condition must give true or false, got {type_name(condition)}: {condition!r}")
    branch = "then" if condition else "else"
    await ctx.run_block(branch)
    return {"branch": branch}


@builtin_action(SwitchStep)
async def switch(ctx: StepContext, params: dict[str, Any]) -> Any:
    value = freeze(params["value"])
    for index, equals in enumerate(ctx.step.extra_as(SwitchCases).equals):
        if _kind(value) is _kind(equals) and value == equals:
            await ctx.run_block(f"cases.{index}.steps")
            return {"case": index}
    await ctx.run_block("default")
    return {"case": "default"}


def _kind(value: Any) -> type:
    # 1 and 1.0 are the same case; true and 1 are not
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | Decimal):
        return Decimal
    return type(value)


@builtin_action(ForeachStep)
async def foreach(ctx: StepContext, params: dict[str, Any]) -> Any:
    items = params["items"]
    if isinstance(items, Mapping) or not isinstance(items, list | tuple):
        raise StepFailed(f"items must be a list, got {type_name(items)}")
    max_items = ctx.step.model_as(ForeachStep).max_items
    limit = ctx.limits.max_foreach_items
    if max_items is not None:
        limit = min(limit, max_items)
    if len(items) > limit:
        raise LimitExceeded(f"foreach got {len(items):,} items; at most {limit:,} are allowed")
    for index, item in enumerate(items):
        await ctx.run_block("steps", item=item, index=index)
    return {"count": len(items)}


@builtin_action(CallStep)
async def call(ctx: StepContext, params: dict[str, Any]) -> Any:
    flow = ctx.step.model_as(CallStep).flow
    run = await ctx.call(flow, params["inputs"])
    if run.status is RunStatus.REJECTED:
        # a refusal stays a refusal up the call chain: rejected runs are not retried
        raise Rejected(f"called flow {flow!r} rejected: {run.error}")
    if not run.succeeded:
        raise StepFailed(f"called flow {flow!r} {run.status.value}: {run.error}")
    return run.outputs
