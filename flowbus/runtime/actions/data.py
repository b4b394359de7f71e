"""Actions on the run itself: set, validate, output, log, fail."""

from __future__ import annotations

import logging
from typing import Any

from flowbus.config.plan import ValidateRules
from flowbus.config.steps import FailStep, LogStep, OutputStep, SetStep, ValidateStep
from flowbus.config.values import type_name
from flowbus.errors import Rejected, StepFailed
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.context import StepContext

logger = logging.getLogger("flowbus.flow")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


@builtin_action(SetStep)
async def set_vars(ctx: StepContext, params: dict[str, Any]) -> Any:
    values = params["vars"]
    ctx.run.vars.update(values)
    return values


@builtin_action(ValidateStep)
async def validate(ctx: StepContext, params: dict[str, Any]) -> Any:
    # checks are evaluated one by one, so a later check may rely on an earlier one holding
    for rule in ctx.step.extra_as(ValidateRules).rules:
        result = ctx.evaluate(rule.check)
        if result is not True:
            if not isinstance(result, bool):
                raise StepFailed(f"a validate check must give true or false, got {type_name(result)}: {result!r}")
            raise Rejected(str(ctx.evaluate(rule.message)))
    return None


@builtin_action(OutputStep)
async def output(ctx: StepContext, params: dict[str, Any]) -> Any:
    values = params["values"]
    ctx.run.outputs.update(values)
    return values


@builtin_action(LogStep)
async def log(ctx: StepContext, params: dict[str, Any]) -> Any:
    message = params["message"]
    level = _LEVELS[ctx.step.model_as(LogStep).level]
    logger.log(
        level,
        "%s",
        message,
        extra={"flow": ctx.run.flow.name, "run_id": ctx.run.id, "step": ctx.key},
    )
    return message


@builtin_action(FailStep)
async def fail(ctx: StepContext, params: dict[str, Any]) -> Any:
    raise StepFailed(str(params["message"]))
