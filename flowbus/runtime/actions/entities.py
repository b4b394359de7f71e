"""Actions on entity records of a store target: save, upsert, update, delete, get."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowbus.config.plan import EntityKey
from flowbus.config.steps import DeleteStep, EntityStep, GetStep, SaveStep, UpdateStep, UpsertStep
from flowbus.config.values import type_name
from flowbus.errors import StepFailed
from flowbus.ids import new_id
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.context import StepContext


def _model(ctx: StepContext) -> EntityStep:
    model = ctx.step.model
    if not isinstance(model, EntityStep):  # the plan pairs each entity action with its model
        raise StepFailed(f"step {ctx.step.id!r} is not an entity step")
    return model


def _key_field(ctx: StepContext) -> str:
    return ctx.step.extra_as(EntityKey).field


def _record_data(params: dict[str, Any]) -> Mapping[str, Any]:
    data = params["data"]
    if not isinstance(data, Mapping):
        raise StepFailed(f"data must be an object, got {type_name(data)}")
    return data


def _key_text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise StepFailed(f"{what} must be a non-empty string or an integer, got {type_name(value)}: {value!r}")
    return str(value)


@builtin_action(SaveStep)
async def save(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Create or replace; a record without its key field gets a new id."""
    model = _model(ctx)
    data = _record_data(params)
    field = _key_field(ctx)
    if field in data and data[field] is not None:
        key = _key_text(data[field], f"the key field {field!r}")
        record = dict(data)
    else:
        key = new_id()
        record = {**data, field: key}
    await ctx.entities.put(model.entity, key, record)
    return record


@builtin_action(UpsertStep)
async def upsert(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Merge into the record with the same key, or create it."""
    model = _model(ctx)
    data = _record_data(params)
    field = _key_field(ctx)
    if field not in data:
        have = ", ".join(sorted(data)) or "nothing"
        raise StepFailed(f"upsert of {model.entity!r} needs its key field {field!r} in data; data has: {have}")
    key = _key_text(data[field], f"the key field {field!r}")
    existing = await ctx.entities.get(model.entity, key)
    record = {**existing, **data} if existing is not None else dict(data)
    await ctx.entities.put(model.entity, key, record)
    return record


@builtin_action(UpdateStep)
async def update(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Merge into an existing record; a missing record fails the step."""
    model = _model(ctx)
    data = _record_data(params)
    key = _key_text(params["record_id"], "record_id")
    existing = await ctx.entities.get(model.entity, key)
    if existing is None:
        raise StepFailed(f"no {model.entity!r} record with key {key!r} to update")
    record = {**existing, **data}
    await ctx.entities.put(model.entity, key, record)
    return record


@builtin_action(DeleteStep)
async def delete(ctx: StepContext, params: dict[str, Any]) -> Any:
    model = _model(ctx)
    key = _key_text(params["record_id"], "record_id")
    return {"deleted": await ctx.entities.delete(model.entity, key)}


@builtin_action(GetStep)
async def get(ctx: StepContext, params: dict[str, Any]) -> Any:
    model = _model(ctx)
    key = _key_text(params["record_id"], "record_id")
    record = await ctx.entities.get(model.entity, key)
    if record is None and getattr(model, "required", False):
        raise StepFailed(f"no {model.entity!r} record with key {key!r}")
    return record
