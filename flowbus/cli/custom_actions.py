"""``--actions module:attr``: the Python step actions a worker runs, loaded from the user's code.

``attr`` is a mapping of action names to ``async def action(ctx, params)`` functions, or one
such function, registered under its own name. The module is imported from the current
directory first (as ``python -m`` would), so a project's own package needs no installing.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from flowbus.config.plan import Plan
from flowbus.config.references import walk_steps
from flowbus.engine import Engine
from flowbus.runtime.actions import BUILTIN_ACTIONS
from flowbus.runtime.context import StepFn
from flowbus.worker import logger

F = TypeVar("F", bound=Callable[..., Any])


def actions_option(fn: F) -> F:
    """The repeatable ``--actions`` option of the commands that run flows."""
    return click.option(
        "--actions",
        "action_specs",
        multiple=True,
        metavar="MODULE:ATTR",
        envvar="FLOWBUS_ACTIONS",
        show_envvar=True,
        help="Custom step actions to run: a dict of name -> async function, or one async function "
        "(its name is the action's). Repeatable.",
    )(fn)


def load_actions(specs: Iterable[str]) -> dict[str, StepFn]:
    """Every action the specs name; raises :class:`click.BadParameter` naming the spec and what is wrong."""
    actions: dict[str, StepFn] = {}
    for spec in specs:
        for name, fn in _actions_of(spec).items():
            if name in actions and actions[name] is not fn:
                raise click.BadParameter(f"{spec}: action {name!r} is already given by an earlier --actions")
            actions[name] = fn
    return actions


def register_actions(engine: Engine, actions: Mapping[str, StepFn]) -> None:
    """Register ``actions`` on ``engine``, and warn of the actions its config uses that none gives:
    their runs would fail, and their messages be retried and then dead-lettered."""
    for name, fn in actions.items():
        engine.register_action(name, fn)
    missing = missing_actions(engine.plan, engine.runner.registry.by_name)
    if missing:
        logger.warning(
            f"the config uses actions this process does not have: {', '.join(missing)}; give them with "
            "--actions MODULE:ATTR, or their runs fail",
            extra={"missing_actions": missing},
        )


def missing_actions(plan: Plan, known: Iterable[str]) -> list[str]:
    """Actions the plan's steps use that are not among ``known``, sorted."""
    used = {step.action for flow in plan.config.flows for step, _ in walk_steps(flow.steps, ())}
    return sorted(used - set(known))


def _actions_of(spec: str) -> Mapping[str, StepFn]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"{spec!r}: expected MODULE:ATTR, e.g. shop_actions:ACTIONS")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module, whatever it raises while importing: said in one line
        raise click.BadParameter(f"{spec}: cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    found = getattr(module, attr, None)
    if found is None:
        raise click.BadParameter(f"{spec}: module {module_name} has no attribute {attr!r}")
    table: Mapping[Any, Any] = found if isinstance(found, Mapping) else {getattr(found, "__name__", attr): found}
    for name, fn in table.items():
        if not isinstance(name, str) or not name:
            raise click.BadParameter(f"{spec}: action names are strings; got {name!r}")
        if name in BUILTIN_ACTIONS:
            raise click.BadParameter(f"{spec}: {name!r} is a built-in action and cannot be replaced")
        if not inspect.iscoroutinefunction(fn):
            raise click.BadParameter(
                f"{spec}: action {name!r} is not an async function (async def {name}(ctx, params))"
            )
    return dict(table)
