"""The built-in step actions, one module per family. Each is a :data:`flowbus.runtime.context.StepFn`,
registered for its step model by :func:`~flowbus.runtime.actions.builtins.builtin_action`."""

from __future__ import annotations

# importing a family registers its actions
from flowbus.runtime.actions import control, data, entities, events, http  # noqa: F401
from flowbus.runtime.actions.builtins import ACTIONS_BY_MODEL, by_action_name
from flowbus.runtime.context import StepFn

#: action name -> action of every built-in step
BUILTIN_ACTIONS: dict[str, StepFn] = by_action_name(ACTIONS_BY_MODEL)
