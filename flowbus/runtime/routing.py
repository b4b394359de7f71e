"""Matching as an explicit, pure result: which flows and handlers a message or event would run.

Used by the CLI, the API and the dashboard to answer "what would this trigger?" without running
anything, and by the worker to say why a message ran nothing (:class:`Unmatched`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a trace reads Unmatched without loading the compiler and the config models
    from flowbus.config.plan import Plan


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
class Unmatched:
    """A ``(source, event_type)`` no enabled trigger flow takes, and the configured pairs nearest it."""

    source: str
    event_type: str
    nearest: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """One line, for the log and the trace."""
        near = ", ".join(_pair(*pair) for pair in self.nearest)
        hint = f"nearest configured pairs: {near}" if near else "no configured pair is near it"
        return f"matched no flow: no enabled trigger flow for {_pair(self.source, self.event_type)}; {hint}"


@dataclass(frozen=True, kw_only=True, slots=True)
class EventMatch:
    """The handlers an event runs: sync ones first, in registration order, then async ones."""

    event: str
    sync: tuple[str, ...]
    async_: tuple[str, ...]


def match(plan: Plan, source: str, event_type: str) -> Match:
    flows = plan.routes.get((source, event_type), ())
    return Match(source=source, event_type=event_type, flows=tuple(f.name for f in flows))


def unmatched(pairs: Iterable[tuple[str, str]], source: str, event_type: str) -> Unmatched:
    """Why ``(source, event_type)`` runs nothing: the routed ``pairs`` closest to it (difflib, as for
    misspelt names), so that a typo in a source's type or a flow's ``event_type`` shows at once."""
    by_text = {f"{s}/{t}": (s, t) for s, t in pairs}
    close = difflib.get_close_matches(f"{source}/{event_type}", list(by_text), n=3)
    return Unmatched(source=source, event_type=event_type, nearest=tuple(by_text[text] for text in close))


def _pair(source: str, event_type: str) -> str:
    return f"({source}, {event_type})"


def match_event(plan: Plan, event: str) -> EventMatch:
    subscribers = plan.subscribers.get(event)
    if subscribers is None:
        return EventMatch(event=event, sync=(), async_=())
    return EventMatch(
        event=event,
        sync=tuple(h.name for h in subscribers.sync),
        async_=tuple(h.name for h in subscribers.async_),
    )
