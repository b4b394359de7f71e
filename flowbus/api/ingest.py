"""Ingress: raw JSON payloads from a source, and CloudEvents, queued for workers.

The hot path, so an app of its own: a plain Starlette app whose two POST routes are tried first,
with the FastAPI app (reads, admin, health, the dashboard) mounted behind them for every other
request. An ingest request meets no FastAPI machinery: its body is read raw (measured faster
than FastAPI's body handling), and routing it costs two path matches.

The FastAPI app declares the same two operations (:mod:`flowbus.api.ingest_operations`), so
that its OpenAPI document describes them and its 405s name their methods; the POSTs themselves
never reach it.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from flowbus import jsonio
from flowbus.api import cloudevents
from flowbus.api.auth import require
from flowbus.api.errors import ApiError
from flowbus.api.state import ActivePlan, ApiState
from flowbus.delays import DelayError, not_before
from flowbus.errors import EventValidationError, UnknownNameError
from flowbus.keys import Scope
from flowbus.metrics import PROCESS
from flowbus.queue import OutgoingMessage, source_message
from flowbus.runtime.inbound import event_message, event_type_of
from flowbus.telemetry import annotate, current_carrier, event_carrier, tracing

#: the longest value of a header flowbus reads (keys, groups, types, CloudEvents attributes),
#: and of an event type found in a body
MAX_HEADER_CHARS = cloudevents.MAX_KEY_CHARS
_READ_HEADERS = ("x-event-type", "idempotency-key", "x-group-key", "x-delay", "x-not-before")


def check_headers(request: Request) -> None:
    """Refuse (422) a header flowbus reads whose value is over :data:`MAX_HEADER_CHARS`: these
    become dedup ids, group keys and types, kept and indexed in the store."""
    for name, value in request.headers.items():
        if (name in _READ_HEADERS or name.startswith("ce-")) and len(value) > MAX_HEADER_CHARS:
            raise ApiError(
                422,
                f"header {name} is {len(value):,} characters long; the limit is {MAX_HEADER_CHARS}",
                issues=[{"where": f"header.{name}"}],
            )


def check_json_media(request: Request) -> None:
    """Refuse (415) a body that says it is not JSON, or JSON in another charset than UTF-8.

    No ``Content-Type`` at all is taken as JSON: many webhook senders set none.
    """
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError(415, f"the body must be JSON (Content-Type: application/json), not {media or 'empty'!r}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise ApiError(415, f"JSON is read as UTF-8; the charset {charset[:40]!r} is not supported")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes before more than that is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the body is over the limit of {limit:,} bytes")
    return bytes(body)


async def read_json(request: Request, limit: int) -> object:
    """The request body as JSON, refused past ``limit`` bytes (413), when it is not UTF-8 text
    (400, naming where) or when it is not JSON (422)."""
    body = await read_body(request, limit)
    try:
        return jsonio.loads(body)
    except jsonio.NotUnicode as exc:
        raise ApiError(400, exc.message) from None
    except jsonio.JsonError as exc:
        raise ApiError(422, exc.message) from None


def bounded(value: str, what: str) -> str:
    """``value``, refused (422) past :data:`MAX_HEADER_CHARS`: it becomes a key kept and indexed."""
    if len(value) > MAX_HEADER_CHARS:
        raise ApiError(422, f"{what} is {len(value):,} characters long; the limit is {MAX_HEADER_CHARS}")
    return value


SOURCE_PATH = "/v1/projects/{project}/sources/{source}/events"
CLOUDEVENTS_PATH = "/v1/projects/{project}/events"


async def ingest_source(request: Request) -> Response:
    """A raw JSON payload from a source: its event type from the source's ``event_type_from``
    path, else from ``X-Event-Type``; queued as one message."""
    state: ApiState = request.app.state.flowbus
    project = request.path_params["project"]
    source = request.path_params["source"]
    try:
        await require(request, project, Scope.INGEST)
        check_headers(request)
        check_json_media(request)
        payload = await read_json(request, state.max_body_bytes)
        active = await state.active(project)
        known = active.plan.sources
        if source not in known:
            # a typo in the URL would otherwise be queued and never run: refuse it at the door
            near = difflib.get_close_matches(source, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ApiError(404, f"project {project!r} has no source {source!r}{hint}", sources=sorted(known))
        found = event_type_of(active.plan, source, payload)
        if found:
            event_type: str | None = bounded(found, "the event type found in the body")
        else:
            event_type = request.headers.get("x-event-type")
        if not event_type:
            path = active.plan.type_paths.get(source)
            looked = f"the source's event_type_from {path.source} found nothing, and " if path else ""
            raise ApiError(422, f"no event type: {looked}no X-Event-Type header was sent")
        message = source_message(
            source,
            event_type,
            payload,
            request.headers.get("x-group-key"),
            request.headers.get("idempotency-key"),
            active.version,
            not_before=requested_delay(request),
            trace_context=current_carrier(),
        )
        [message_id] = await state.sender(project).send([message])
        annotate({"flowbus.message_id": message_id, "flowbus.event_type": event_type})
    except ApiError as exc:
        return exc.response()
    PROCESS.messages_in.labels(project, "source").inc()
    return JSONResponse({"message_id": message_id, "event_type": event_type}, status_code=202)


async def ingest_cloudevents(request: Request) -> Response:
    """CloudEvents of defined event types: checked now (422 per bad property), published by workers.

    The CloudEvent's ``source`` and ``id`` make its dedup id, so a retried delivery is dropped.
    """
    state: ApiState = request.app.state.flowbus
    project = request.path_params["project"]
    try:
        await require(request, project, Scope.INGEST)
        check_headers(request)
        body = await read_json(request, state.max_body_bytes)
        events = cloudevents.parse(request.headers.get("content-type", ""), request.headers, body)
        active = await state.active(project)
        group_key = request.headers.get("x-group-key")
        messages, problems = _messages(active, events, group_key, requested_delay(request), current_carrier())
        if problems:
            raise ApiError(422, "some events do not match their definitions", events=problems)
        message_ids = await state.sender(project).send(messages)
        accepted = [{"id": event.id, "message_id": id_} for event, id_ in zip(events, message_ids, strict=True)]
    except ApiError as exc:
        return exc.response()
    PROCESS.messages_in.labels(project, "cloudevent").inc(len(accepted))
    return JSONResponse({"accepted": accepted}, status_code=202)


def requested_delay(request: Request) -> dt.datetime | None:
    """The time the request's ``X-Delay`` or ``X-Not-Before`` header asks for (None: at once)."""
    delay, at = request.headers.get("x-delay"), request.headers.get("x-not-before")
    try:
        return not_before(delay, at, field="header X-Delay" if delay is not None else "header X-Not-Before")
    except DelayError as error:
        raise ApiError(422, str(error)) from None


def _messages(
    active: ActivePlan,
    events: list[cloudevents.Envelope],
    group_key: str | None,
    delayed: dt.datetime | None,
    trace_context: str | None,
) -> tuple[list[OutgoingMessage], list[dict[str, object]]]:
    """The checked message of each event, and one entry per refused event (naming each bad
    property); the CloudEvent's subject is its group unless the request names one, its own
    ``delay``/``notbefore`` its time (else the request's headers'), and its
    distributed-tracing extension its trace unless it has none (then the request's)."""
    plan = active.plan
    messages: list[OutgoingMessage] = []
    problems: list[dict[str, object]] = []
    for index, event in enumerate(events):
        refused: dict[str, object] = {"index": index, "id": event.id}
        # CloudEvents makes data optional, and so does the document: none is no properties
        data: Any = {} if event.data is None else event.data
        if event.type not in plan.events:
            defined = ", ".join(sorted(plan.events)) or "none"
            problems.append({**refused, "error": f"no event {event.type!r} is defined (defined: {defined})"})
        elif not isinstance(data, dict):
            problems.append({**refused, "error": "data must be a JSON object of the event's properties"})
        else:
            try:
                messages.append(
                    event_message(
                        plan, event.type, data, event.source, group_key or event.subject,
                        f"{event.source}/{event.id}", event.version, config_version=active.version,
                        trace_context=event_carrier(event.traceparent, event.tracestate) or trace_context,
                    )._replace(not_before=event.not_before or delayed)
                )  # fmt: skip
            except EventValidationError as exc:
                problems.append({**refused, "properties": exc.problems})
            except UnknownNameError as exc:  # a version the event does not have
                problems.append({**refused, "error": str(exc)})
    return messages, problems


def traced(endpoint: Callable[[Request], Awaitable[Response]], route: str) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` in a server span that continues the request's ``traceparent``; the endpoint
    itself when tracing is off (decided once a process)."""
    traces = tracing()
    if traces is None:
        return endpoint

    async def in_span(request: Request) -> Response:
        params = request.path_params
        attributes = {
            "http.request.method": request.method, "http.route": route, "url.path": request.url.path,
            "flowbus.project": params.get("project"), "flowbus.source": params.get("source"),
        }  # fmt: skip
        with traces.span(
            f"{request.method} {route}", attributes, kind="SERVER", parent=traces.extract(request.headers)
        ) as span:
            response = await endpoint(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                traces.failed(span, f"HTTP {response.status_code}")
        return response

    return in_span


def create_app(
    state: ApiState,
    *,
    behind: ASGIApp,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]],
    exception_handlers: Mapping[Any, Callable[..., Any]],
) -> Starlette:
    """The ingest app over ``state``, with ``behind`` mounted after its routes: a request that is
    not an ingest POST (a GET of ``/events`` included) passes to it unchanged."""
    app = Starlette(
        routes=[
            Route(SOURCE_PATH, traced(ingest_source, SOURCE_PATH), methods=["POST"]),
            Route(CLOUDEVENTS_PATH, traced(ingest_cloudevents, CLOUDEVENTS_PATH), methods=["POST"]),
            Mount("", app=behind),
        ],
        exception_handlers=dict(exception_handlers),
        lifespan=lifespan,
    )
    app.state.flowbus = state
    return app
