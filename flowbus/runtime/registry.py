"""Step actions by name: the built-ins and the ones a project registers.

One registry is handed to whoever runs steps (a :class:`~flowbus.runtime.runner.Runner`); a
worker that switches to a new config version keeps it, so custom actions carry over as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from flowbus.errors import FlowbusError, UnknownNameError, did_you_mean
from flowbus.runtime.actions import BUILTIN_ACTIONS
from flowbus.runtime.context import StepFn

#: what a custom action's effects reach: ``external`` (the default) ones are journaled the moment
#: the step finishes, so that a retry replays its output instead of calling it again; ``none`` (it
#: only computes from its params) needs no journal: a retry calls it again, which is harmless
Effects = Literal["none", "external"]


class ActionRegistry:
    """The action of every ``action:`` name a step may use."""

    __slots__ = ("by_name", "unjournaled")

    def __init__(self, custom: Mapping[str, StepFn] | None = None) -> None:
        #: read directly on the per-step path: a dict lookup, no method call
        self.by_name: dict[str, StepFn] = dict(BUILTIN_ACTIONS)
        #: custom actions registered with ``effects="none"``: their steps are not journaled
        self.unjournaled: set[str] = set()
        for name, fn in (custom or {}).items():
            self.register(name, fn)

    def register(self, name: str, fn: StepFn, *, effects: Effects = "external") -> None:
        """Make ``fn`` the action of every step with ``action: <name>``."""
        if name in BUILTIN_ACTIONS:
            raise FlowbusError(f"{name!r} is a built-in action and cannot be replaced")
        if effects not in ("none", "external"):
            raise FlowbusError(f"effects of action {name!r} must be 'none' or 'external', not {effects!r}")
        self.by_name[name] = fn
        if effects == "none":
            self.unjournaled.add(name)
        else:
            self.unjournaled.discard(name)

    def get(self, name: str) -> StepFn:
        """The action named ``name``; raises a clear error naming the nearest ones when none is registered."""
        fn = self.by_name.get(name)
        if fn is None:
            hint = did_you_mean(name, self.by_name)
            raise UnknownNameError(f"no action {name!r} is registered (use Engine.register_action){hint}")
        return fn

    def __contains__(self, name: object) -> bool:
        return name in self.by_name
