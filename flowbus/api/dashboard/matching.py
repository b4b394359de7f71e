"""What a message or event would run on a plan, and for each near miss, why it would not: the
``match`` answer with reasons, for the events page's dry run and an event's page."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, NamedTuple

from flowbus.config.plan import Plan
from flowbus.errors import EventValidationError, FlowbusError
from flowbus.runtime.inbound import event_message, event_type_of
from flowbus.runtime.routing import match, match_event

#: near misses listed at most
MAX_MISSES = 8


class Hit(NamedTuple):
    what: str  # "flow", "handler"
    name: str
    note: str = ""


class Miss(NamedTuple):
    what: str
    name: str
    why: str


class Answer(NamedTuple):
    subject: str
    hits: list[Hit]
    misses: list[Miss]
    problems: list[str]


def _near(name: str, known: Any) -> str:
    found = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {found[0]!r}?" if found else ""


def for_message(plan: Plan, source: str, event_type: str | None, payload: Any) -> Answer:
    """The trigger flows a raw payload from ``source`` runs; near misses: flows of the source for
    another type, flows of the type from another source, disabled flows."""
    problems: list[str] = []
    if source not in plan.sources:
        problems.append(f"there is no source {source!r}{_near(source, plan.sources)}")
    resolved = event_type or event_type_of(plan, source, payload)
    if not resolved:
        path = plan.type_paths.get(source)
        problems.append(
            f"no event type: source {source!r}'s event_type_from {path.source} finds none in the payload"
            if path is not None
            else "no event type: give one (the source has no event_type_from)"
        )
        return Answer(f"{source} / ?", [], [], problems)
    hits = [Hit("flow", name) for name in match(plan, source, resolved).flows]
    misses: list[Miss] = []
    for flow in plan.flows.values():
        model = flow.model
        if model.source is None or model.name in {h.name for h in hits}:
            continue
        if model.source == source and model.event_type == resolved and not model.enabled:
            misses.append(Miss("flow", model.name, "it is disabled (enabled: false)"))
        elif model.source == source:
            misses.append(Miss("flow", model.name, f"it runs for event type {model.event_type!r}, not {resolved!r}"))
        elif model.event_type == resolved:
            misses.append(Miss("flow", model.name, f"it runs for source {model.source!r}, not {source!r}"))
    return Answer(f"{source} / {resolved}", hits, _closest(misses, resolved), problems)


def for_event(plan: Plan, event: str, data: Mapping[str, Any]) -> Answer:
    """The handlers an event runs (sync first) with the inputs each would get; near misses:
    handlers of a similar event, handlers of disabled flows, inputs the data lacks."""
    problems: list[str] = []
    if event not in plan.events:
        problems.append(f"no event {event!r} is defined{_near(event, plan.events)}")
    else:
        try:
            event_message(plan, event, data, "dashboard")
        except EventValidationError as exc:
            problems += [f"{name}: {reason}" for name, reason in exc.problems.items()]
        except FlowbusError as exc:
            problems.append(exc.message)
    found = match_event(plan, event)
    hits: list[Hit] = []
    misses: list[Miss] = []
    for mode, names in (("sync", found.sync), ("async", found.async_)):
        for name in names:
            handler = plan.handlers[name]
            inputs = {input_: data.get(prop) for prop, input_ in handler.bindings}
            lacking = sorted(handler.flow.required_inputs - {i for i, v in inputs.items() if v is not None})
            note = f"{mode}, flow {handler.flow.name}"
            if lacking:
                misses.append(
                    Miss("handler", name, f"it would fail: flow {handler.flow.name} needs {', '.join(lacking)}")
                )
            else:
                hits.append(Hit("handler", name, note))
    for handler in plan.handlers.values():
        model = handler.model
        if model.event == event and not handler.flow.model.enabled:
            misses.append(Miss("handler", model.name, f"its flow {handler.flow.name} is disabled"))
        elif model.event != event:
            misses.append(Miss("handler", model.name, f"it subscribes to {model.event!r}, not {event!r}"))
    return Answer(event, hits, _closest(misses, event), problems)


def _closest(misses: list[Miss], wanted: str) -> list[Miss]:
    """The nearest misses first: disabled or failing ones, then those for a name like ``wanted``."""

    def rank(miss: Miss) -> tuple[int, float]:
        other = miss.why.split("'")[1] if miss.why.count("'") >= 2 else ""
        return (0 if "disabled" in miss.why or "fail" in miss.why else 1,
                -difflib.SequenceMatcher(None, wanted, other).ratio())  # fmt: skip

    return sorted(misses, key=rank)[:MAX_MISSES]
