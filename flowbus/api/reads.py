"""Reads (scope ``read``): an event, its trace (the whole chain by correlation id), a run, a
queued message and the runs it caused."""

from __future__ import annotations

from typing import Any, TypeVar

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


T = TypeVar("T")


def found(value: T | None, kind: str, identifier: str, project: str) -> T:
    """``value``, or a 404 naming what was looked for."""
    if value is None:
        raise ApiError(404, f"no {kind} {identifier!r} in project {project!r}")
    return value


async def _backend(request: Request, project: str) -> Any:
    state: ApiState = request.app.state.flowbus
    return state.backend(project)


@router.get("/events/{event_id}", summary="An event instance")
async def get_event(project: str, event_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    instance = found(await backend.get_event(event_id), "event", event_id, project)
    return json_response(instance.to_dict())


@router.get("/events/{event_id}/trace", summary="The trace of an event's whole chain")
async def get_event_trace(project: str, event_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    instance = found(await backend.get_event(event_id), "event", event_id, project)
    root = await backend.get_event(instance.correlation_id) or instance
    return json_response(to_data(await trace_event(backend, root)))


@router.get("/runs/{run_id}", summary="A run, its steps and what it caused")
async def get_run(project: str, run_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    run = found(await backend.get_run(run_id), "run", run_id, project)
    return json_response(to_data(await trace_run(backend, run)))


@router.get("/messages/{message_id}", summary="A queued message and the runs of each attempt")
async def get_message(project: str, message_id: str, request: Request) -> Response:
    backend = await _backend(request, project)
    message = found(await backend.get_message(message_id), "message", message_id, project)
    data = message.to_dict()
    data["runs"] = [to_data(tree) for tree in await trace_message(backend, message_id)]
    return json_response(data)
