"""Reads (scope ``read``): lists of events, runs and entity records with filters and cursor
pagination, an event, its trace (the whole chain by correlation id), a run, a queued message and
the runs it caused, an entity record."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from pydantic import StringConstraints
from starlette.responses import Response

from flowbus import jsonio, reads
from flowbus.api.auth import needs
from flowbus.api.errors import ERROR_RESPONSES, ApiError
from flowbus.api.state import ApiState
from flowbus.config.base import IDENTIFIER_PATTERN
from flowbus.ids import ID_PATTERN
from flowbus.keys import Scope
from flowbus.queue import QueuedMessage
from flowbus.runtime.records import RunStatus, Trigger
from flowbus.stores.protocols import MAX_FIELD_FILTERS, Backend, EventFilter, RunFilter
from flowbus.trace import to_data, trace_chain, trace_message, trace_run

router = APIRouter(
    prefix="/v1/projects/{project}", tags=["reads"], responses=ERROR_RESPONSES, dependencies=[needs(Scope.READ)]
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


def backend_of(request: Request, project: str) -> Backend:
    state: ApiState = request.app.state.flowbus
    return state.backend(project)


async def message_data(backend: Backend, message: QueuedMessage) -> dict[str, Any]:
    """A queued message as plain data, with the runs of each of its attempts."""
    data = message.to_dict()
    data["runs"] = [to_data(tree) for tree in await trace_message(backend, message.id)]
    return data


#: a name in a filter: bounded like every other request value
Name = Annotated[str | None, Query(min_length=1, max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(
        pattern=ID_PATTERN,
        description="the next_cursor of the previous page",
    ),
]


def _time_pattern() -> str:
    """An ISO 8601 time (RFC 3339, the offset optional) of a real date: the form of
    :data:`flowbus.reads.TIME_PATTERN`, with no day past its month's end (29 February in leap
    years only), and an offset only where the time stays within the calendar in UTC: none ahead
    of UTC on 0001-01-01, none behind it on 9999-12-31. Digits are [0-9], not \\d, which Python
    reads as any Unicode digit."""
    clock = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    offset = r"([01][0-9]|2[0-3]):[0-5][0-9]"
    days_28 = r"(0[1-9]|1[0-9]|2[0-8])"
    short = rf"(0[1-9]|1[0-2])-{days_28}|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31"
    years = r"000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8]"
    leap = r"[0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00"
    first_year = rf"01-(0[2-9]|[12][0-9]|3[01])|02-{days_28}|(0[3-9]|1[0-2])-(0[1-9]|[12][0-9]|30)|(0[3578]|1[02])-31"
    last_year = rf"(0[1-9]|1[0-2])-{days_28}|(0[13-9]|1[0-2])-(29|30)|(0[13578]|10)-31|12-30"
    anywhere = f"(Z|[+-]{offset})?"
    return "^(" + "|".join([
        f"({years})-({short}){clock}{anywhere}",
        f"({leap})-02-29{clock}{anywhere}",
        f"0001-({first_year}){clock}{anywhere}",
        f"9999-({last_year}){clock}{anywhere}",
        f"0001-01-01{clock}(Z|-{offset}|\\+00:00)?",
        f"9999-12-31{clock}(Z|\\+{offset}|-00:00)?",
    ]) + ")$"  # fmt: skip


#: the times the API takes, stated in its document and checked by :func:`_utc`
TIME_PATTERN = _time_pattern()
_TIME = re.compile(TIME_PATTERN)

#: an ISO 8601 time (RFC 3339, the offset optional: without one it is UTC)
Time = Annotated[
    str | None,
    Query(
        # not Query(pattern=...): _utc says what is wrong in flowbus's words, not by quoting this
        json_schema_extra={"pattern": TIME_PATTERN},
        description="an ISO 8601 time, such as 2026-11-22T10:00:00Z; without an offset it is UTC",
    ),
]


def _utc(text: str | None, name: str) -> dt.datetime | None:
    """The time in UTC, the zone every stored time is in."""
    if text is None:
        return None
    try:
        value = reads.utc_time(text)
    except ValueError as exc:
        raise ApiError(422, f"{name} is {exc}", issues=[{"where": f"query.{name}"}]) from None
    if not _TIME.match(text):  # a real time, but on the calendar's first or last day, offset off it
        said = "on the first or last day of the calendar, give the time in UTC"
        raise ApiError(422, f"{name} is not a valid time: {text!r}; {said}", issues=[{"where": f"query.{name}"}])
    return value


def page(items: Sequence[Any], limit: int, item: Callable[[Any], Any]) -> Response:
    """A page of a list of records with ids, fetched with ``limit + 1``."""
    return json_response(reads.page(items, limit, item, lambda x: x.id))


#: an entity name, as entity steps spell it
Entity = Annotated[str, Path(pattern=IDENTIFIER_PATTERN, max_length=128, description="the entity, such as company")]
#: field filters of an entity list, each FIELD=VALUE
Where = Annotated[
    list[Annotated[str, StringConstraints(pattern=r"^[^=]+=", max_length=1000)]] | None,
    Query(
        max_length=MAX_FIELD_FILTERS,
        # a field filtered twice is refused: the document says as much as JSON Schema can
        json_schema_extra={"uniqueItems": True},
        description=(
            "FIELD=VALUE, repeatable (all must hold): records whose top-level FIELD has the text VALUE. "
            "A string as it is, an integer in decimal, true or false, a decimal, time or date as stored "
            "(19.90 is not 19.9); null, floats, lists and objects match nothing. Each FIELD once"
        ),
    ),
]
KeyCursor = Annotated[str | None, Query(min_length=1, description="the next_cursor of the previous page (a key)")]
#: a record's key: the rest of the path, so a key holding a slash is found whether or not it is escaped
Key = Annotated[str, Path(description="the record's key, the value of its key field")]


@router.get("/events", summary="Event instances, newest first")
async def list_events(
    project: str,
    request: Request,
    type: Name = None,
    source: Name = None,
    correlation_id: Name = None,
    since: Time = None,
    until: Time = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    backend = backend_of(request, project)
    where = EventFilter(type, source, correlation_id, _utc(since, "since"), _utc(until, "until"))
    return json_response(await reads.events_page(backend, where, cursor, limit))


@router.get("/runs", summary="Runs, newest first (without their steps: see /runs/{run_id})")
async def list_runs(
    project: str,
    request: Request,
    flow: Name = None,
    handler: Name = None,
    status: RunStatus | None = None,
    trigger: Trigger | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    backend = backend_of(request, project)
    return json_response(await reads.runs_page(backend, RunFilter(flow, handler, status, trigger), cursor, limit))


@router.get("/entities/{entity}", summary="Entity records, in key order")
async def list_entities(
    project: str, entity: Entity, request: Request, where: Where = None, limit: Limit = 50, cursor: KeyCursor = None
) -> Response:
    try:
        fields = reads.field_filters(where or ())
    except ValueError as exc:
        raise ApiError(422, f"where: {exc}", issues=[{"where": "query.where"}]) from None
    backend = backend_of(request, project)
    return json_response(await reads.records_page(backend, entity, fields, cursor, limit))


@router.get("/entities/{entity}/{key:path}", summary="An entity record, by its key")
async def get_entity(project: str, entity: Entity, key: Key, request: Request) -> Response:
    backend = backend_of(request, project)
    stored = found(await backend.read_entity(entity, key), f"{entity} record", key, project)
    return json_response(reads.record_data(key, stored))


@router.get("/events/{event_id}", summary="An event instance")
async def get_event(project: str, event_id: str, request: Request) -> Response:
    backend = backend_of(request, project)
    instance = found(await backend.get_event(event_id), "event", event_id, project)
    return json_response(instance.to_dict())


@router.get("/events/{event_id}/trace", summary="The trace of an event's whole chain")
async def get_event_trace(project: str, event_id: str, request: Request) -> Response:
    backend = backend_of(request, project)
    instance = found(await backend.get_event(event_id), "event", event_id, project)
    return json_response(to_data(await trace_chain(backend, instance)))


@router.get("/runs/{run_id}", summary="A run, its steps and what it caused")
async def get_run(project: str, run_id: str, request: Request) -> Response:
    backend = backend_of(request, project)
    run = found(await backend.get_run(run_id), "run", run_id, project)
    return json_response(to_data(await trace_run(backend, run)))


@router.get("/messages/{message_id}", summary="A queued message and the runs of each attempt")
async def get_message(project: str, message_id: str, request: Request) -> Response:
    backend = backend_of(request, project)
    message = found(await backend.get_message(message_id), "message", message_id, project)
    return json_response(await message_data(backend, message))
