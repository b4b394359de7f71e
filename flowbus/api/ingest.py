"""Ingress: raw JSON payloads from a source, queued for workers (a plain Starlette route: the
hot path skips FastAPI's body handling, as measured in dependencies)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowbus import jsonio
from flowbus.api.auth import require
from flowbus.api.errors import ApiError
from flowbus.api.state import ApiState, NoActiveConfig
from flowbus.keys import Scope


async def read_json(request: Request, limit: int) -> object:
    """The request body as JSON, refused past ``limit`` bytes (413) or when not JSON (422)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the body is over the limit of {limit:,} bytes")
    try:
        return jsonio.loads(bytes(body))
    except jsonio.JsonError as exc:
        raise ApiError(422, exc.message) from None


async def ingest_source(request: Request) -> Response:
    state: ApiState = request.app.state.flowbus
    project = request.path_params["project"]
    source = request.path_params["source"]
    try:
        await require(state, request, project, Scope.INGEST)
        payload = await read_json(request, state.max_body_bytes)
        try:
            engine = await state.engine(project)
        except NoActiveConfig:
            raise ApiError(409, f"project {project!r} has no published config: flowbus publish FILE") from None
        declared = {s.name for s in engine.config.config.sources}
        if declared and source not in declared:
            raise ApiError(404, f"project {project!r} has no source {source!r}", sources=sorted(declared))
        event_type = engine.event_type_of(source, payload) or request.headers.get("x-event-type")
        if not event_type:
            path = engine.plan.type_paths.get(source)
            looked = f"the source's event_type_from {path.source} found nothing, and " if path else ""
            raise ApiError(422, f"no event type: {looked}no X-Event-Type header was sent")
        message_id = await engine.send(
            source,
            event_type,
            payload,
            group_key=request.headers.get("x-group-key"),
            dedup_id=request.headers.get("idempotency-key"),
        )
    except ApiError as exc:
        return exc.response()
    return JSONResponse({"message_id": message_id, "event_type": event_type}, status_code=202)
