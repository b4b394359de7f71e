"""Where each built-in action says which step model it runs: ``@builtin_action(SaveStep)``.

The models declare themselves in :mod:`flowbus.config.steps` (config does not know the runtime);
the actions register here, next to their functions. A unit test holds the two sets equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from flowbus.config.steps import BUILTIN_STEPS, BaseStep
from flowbus.runtime.context import StepFn

F = TypeVar("F", bound=StepFn)

#: step model -> its action, filled as the action modules are imported (``flowbus.runtime.actions`` imports them all)
ACTIONS_BY_MODEL: dict[type[BaseStep], StepFn] = {}


def builtin_action(model: type[BaseStep]) -> Callable[[F], F]:
    """Make the decorated function the action of every step of ``model``."""

    def register(fn: F) -> F:
        if model in ACTIONS_BY_MODEL:
            raise TypeError(f"{model.__name__} already has an action: {ACTIONS_BY_MODEL[model].__qualname__}")
        ACTIONS_BY_MODEL[model] = fn
        return fn

    return register


def by_action_name(actions: Mapping[type[BaseStep], StepFn]) -> dict[str, StepFn]:
    """Action name -> action, for each built-in step model that has one, in the models' order."""
    return {name: actions[model] for name, model in BUILTIN_STEPS.items() if model in actions}
