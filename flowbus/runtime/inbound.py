"""What the ingress needs of a config: the event type of a raw payload, and the inbound message
of a payload or of an event, checked against a compiled plan.

Plain functions over a :class:`~flowbus.config.plan.Plan` and the config version the message is
to run on: shaping a message needs no backend, no actions and no engine, so that the HTTP API
holds a plan and a queue per project and nothing that runs flows. Kept free of the stores, the
API and the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowbus.config.event_versions import EventVersions
from flowbus.config.plan import CompiledEvent, Plan
from flowbus.errors import UnknownNameError, did_you_mean
from flowbus.queue import MessageKind, OutgoingMessage, QueueName


def event_type_of(plan: Plan, source: str, payload: Any) -> str | None:
    """The event type of a raw payload, by its source's ``event_type_from`` path."""
    path = plan.type_paths.get(source)
    if path is None:
        return None
    found = path.find_one(payload)
    return found if isinstance(found, str) else None


def event_message(
    plan: Plan,
    event: str,
    properties: Mapping[str, Any],
    source: str,
    group_key: str | None = None,
    dedup_id: str | None = None,
    version: int | None = None,
    *,
    config_version: int | None = None,
    trace_context: str | None = None,
) -> OutgoingMessage:
    """The inbound message that has a worker publish ``version`` of ``event`` (default: the
    latest), to run on ``config_version`` in the trace of ``trace_context``; its properties are
    checked now.

    Raises :class:`~flowbus.errors.EventValidationError` naming each bad property, and
    :class:`~flowbus.errors.UnknownNameError` for an event or version the plan does not define.
    """
    compiled = compiled_event(plan, event, version)
    compiled.schema.validate(properties)
    # the version checked now is the one published, whatever config is active by then
    body = {"event": event, "properties": properties, "source": source, "version": compiled.definition.version}
    return OutgoingMessage(
        QueueName.INBOUND, MessageKind.EVENT, body, group_key, dedup_id, config_version, trace_context=trace_context
    )


def compiled_event(plan: Plan, name: str, version: int | None = None) -> CompiledEvent:
    """``version`` of the event ``name``; the latest when ``version`` is None."""
    compiled = plan.events.get(name)
    if compiled is None:
        raise UnknownNameError(f"no event {name!r} is defined{did_you_mean(name, plan.events)}")
    if version is None or version == compiled.definition.version:
        return compiled
    older = plan.versions.get((name, version))
    if older is None:
        raise UnknownNameError(EventVersions(plan.config.events).missing_version(name, version))
    return older
