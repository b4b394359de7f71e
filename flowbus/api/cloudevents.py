"""CloudEvents 1.0 over HTTP, our own envelope (the SDK is only a client in tests): structured
(``application/cloudevents+json``), binary (``ce-*`` headers) and batch
(``application/cloudevents-batch+json``) modes.

The event version travels in the extension attribute ``eventversion`` (``ce-eventversion`` in
binary mode): an extension, rather than ``dataschema``, so that a client sends a plain number
instead of a URI flowbus would have to parse. A delay travels the same way: ``delay`` (seconds, or
``90s``, ``10m``...) or ``notbefore`` (an ISO 8601 time) keep the event queued until then.

The distributed-tracing extension (``traceparent``, ``tracestate``) names the trace an event was
sent in; flowbus continues it when it traces (:mod:`flowbus.telemetry`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from flowbus.api.errors import ApiError
from flowbus.delays import DelayError, not_before

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "specversion", "type")
#: the longest attribute flowbus keeps as a key (ids, sources, types and subjects become dedup
#: ids, types and group keys, stored and indexed): the same limit as the ingress's headers
MAX_KEY_CHARS = 512
VERSION = "eventversion"
MAX_BATCH = 1000


class Envelope(NamedTuple):
    """The attributes flowbus uses of one CloudEvent, and its data."""

    id: str
    source: str
    type: str
    data: Any
    subject: str | None = None
    #: the event version it names; None: the latest
    version: int | None = None
    #: queued until then (its ``delay`` or ``notbefore`` attribute); None: at once
    not_before: dt.datetime | None = None
    #: the distributed-tracing extension: the producer's W3C trace context
    traceparent: str | None = None
    tracestate: str | None = None


def parse(content_type: str, headers: Mapping[str, str], body: Any) -> list[Envelope]:
    """The events of a request, by its content mode; an ApiError (422) names what is wrong."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == BATCH:
        if not isinstance(body, list):
            raise ApiError(422, "a batch must be a JSON array of CloudEvents")
        if len(body) > MAX_BATCH:
            raise ApiError(422, f"a batch holds at most {MAX_BATCH:,} events, got {len(body):,}")
        return [_structured(item, f"[{index}]") for index, item in enumerate(body)]
    if media == STRUCTURED:
        return [_structured(body, "")]
    if "ce-specversion" in headers:
        return [_binary(headers, body)]
    raise ApiError(
        415,
        f"send CloudEvents as {STRUCTURED}, {BATCH}, or in binary mode with ce-* headers",
    )


def _structured(item: Any, where: str) -> Envelope:
    if not isinstance(item, dict):
        raise ApiError(422, f"event{where}: a CloudEvent must be a JSON object")
    return _envelope({k: v for k, v in item.items() if k != "data"}, item.get("data"), where)


def _binary(headers: Mapping[str, str], body: Any) -> Envelope:
    attributes = {name[3:]: value for name, value in headers.items() if name.lower().startswith("ce-")}
    return _envelope(attributes, body, "")


def _envelope(attributes: Mapping[str, Any], data: Any, where: str) -> Envelope:
    missing = [name for name in REQUIRED if not isinstance(attributes.get(name), str) or not attributes[name]]
    if missing:
        raise ApiError(422, f"event{where}: missing or empty attributes: {', '.join(missing)}")
    for name in (*REQUIRED, "subject"):
        value = attributes.get(name)
        if isinstance(value, str) and len(value) > MAX_KEY_CHARS:
            raise ApiError(422, f"event{where}: {name} is {len(value):,} characters long; the limit is {MAX_KEY_CHARS}")
    if attributes["specversion"] != "1.0":
        raise ApiError(422, f"event{where}: specversion {attributes['specversion']!r} is not supported; use 1.0")
    subject = attributes.get("subject")
    return Envelope(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        data=data,
        subject=subject if isinstance(subject, str) else None,
        version=_version(attributes.get(VERSION), where),
        not_before=_not_before(attributes, where),
        traceparent=_text(attributes.get("traceparent")),
        tracestate=_text(attributes.get("tracestate")),
    )


def _not_before(attributes: Mapping[str, Any], where: str) -> dt.datetime | None:
    delay, at = attributes.get("delay"), attributes.get("notbefore")
    try:
        return not_before(delay, at, field="delay" if delay is not None else "notbefore")
    except DelayError as error:
        raise ApiError(422, f"event{where}: {error}") from None


def _text(value: Any) -> str | None:
    """A string attribute; anything else (or a string past any trace context's length) is no
    value, as a tracer ignores a malformed context rather than refusing what it came with."""
    return value if isinstance(value, str) and len(value) <= MAX_KEY_CHARS else None


def _version(value: Any, where: str) -> int | None:
    """An integer attribute, or its text (as binary mode sends every attribute)."""
    if value is None:
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or len(text) > 9 or not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ApiError(422, f"event{where}: {VERSION} must be a whole number from 1, got {str(value)[:20]!r}")
    return int(text)
