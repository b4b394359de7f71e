"""Reads (scope ``read``): an event, its trace (the whole chain by correlation id), a run, a
queued message and the runs it caused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from flowbus import jsonio
from flowbus.api.auth import require
from flowbus.api.errors import ERROR_RESPONSES, ApiError
from flowbus.api.state import ApiState
from flowbus.keys import Scope
from flowbus.runtime.trace import to_data, trace_event, trace_message, trace_run


async def _require_read(project: str, request: Request) -> None:
    await require(request.app.state.flowbus, request, project, Scope.READ)


router = APIRouter(
    prefix="/v1/projects/{project}", tags=["reads"], responses=ERROR_RESPONSES, dependencies=[Depends(_require_read)]
)


def json_response(data: Any, status: int = 200) -> Response:
    """JSON with exact decimals and ISO times (flowbus's own encoder)."""
    return Response(jsonio.dumps(data), status_code=status, media_type="application/json")


async def _backend(request: Request, project: str) -> Any:
    state: ApiState = request.app.state.flowbus
    return state.backend(project)


@router.get("/events/{event_id}", summary="An event instance")
async def get_event(project: str, event_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    instance = await backend.get_event(event_id)
    if instance is None:
        raise ApiError(404, f"no event {event_id!r} in project {project!r}")
    return json_response(instance.to_dict())


@router.get("/events/{event_id}/trace", summary="The trace of an event's whole chain")
async def get_event_trace(project: str, event_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    instance = await backend.get_event(event_id)
    if instance is None:
        raise ApiError(404, f"no event {event_id!r} in project {project!r}")
    root = await backend.get_event(instance.correlation_id) or instance
    return json_response(to_data(await trace_event(backend, root)))


@router.get("/runs/{run_id}", summary="A run, its steps and what it caused")
async def get_run(project: str, run_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    run = await backend.get_run(run_id)
    if run is None:
        raise ApiError(404, f"no run {run_id!r} in project {project!r}")
    return json_response(to_data(await trace_run(backend, run)))


@router.get("/messages/{message_id}", summary="A queued message and the runs of each attempt")
async def get_message(project: str, message_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    message = await backend.get_message(message_id)
    if message is None:
        raise ApiError(404, f"no message {message_id!r} in project {project!r}")
    data = message._asdict()
    data["errors"] = [e._asdict() for e in message.errors]
    data["runs"] = [to_data(tree) for tree in await trace_message(backend, message_id)]
    return json_response(data)
