"""Matching as an explicit, pure result: which flows and handlers a message or event would run.

Used by the engine to dispatch, and by the CLI (and later the API) to answer "what would
this trigger?" without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowbus.runtime.plan import Plan


@dataclass(frozen=True, kw_only=True, slots=True)
class Match:
    """The trigger flows a ``(source, event_type)`` message runs, in order."""

    source: str
    event_type: str
    flows: tuple[str, ...]

    @property
    def matched(self) -> bool:
        return bool(self.flows)


@dataclass(frozen=True, kw_only=True, slots=True)
class EventMatch:
    """The handlers an event runs: sync ones first, in registration order, then async ones."""

    event: str
    sync: tuple[str, ...]
    async_: tuple[str, ...]


def match(plan: Plan, source: str, event_type: str) -> Match:
    flows = plan.routes.get((source, event_type), ())
    return Match(source=source, event_type=event_type, flows=tuple(f.name for f in flows))


def match_event(plan: Plan, event: str) -> EventMatch:
    subscribers = plan.subscribers.get(event)
    if subscribers is None:
        return EventMatch(event=event, sync=(), async_=())
    return EventMatch(
        event=event,
        sync=tuple(h.name for h in subscribers.sync),
        async_=tuple(h.name for h in subscribers.async_),
    )
