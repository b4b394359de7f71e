"""Events: a filtered, keyset-paged browser; one event with its data, its dedup verdict, the runs
it caused and the match answer (near misses with reasons); send again; a dry-run form."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowbus import jsonio, reads
from flowbus.api.dashboard import matching
from flowbus.api.dashboard.access import Form, action, page, refused
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.runs import ID_PATTERN, local_time
from flowbus.api.dashboard.session import Session
from flowbus.api.errors import ApiError
from flowbus.api.state import ApiState
from flowbus.errors import FlowbusError
from flowbus.events.frozen import thaw
from flowbus.events.instance import EventInstance
from flowbus.ids import MAX_ID
from flowbus.runtime.inbound import event_message
from flowbus.stores.protocols import Backend, EventFilter

PAGE = 50
#: the largest payload the dry-run form takes (it travels in the URL)
MAX_PAYLOAD_CHARS = 16 * 1024


@page
async def events_page(request: Request, session: Session) -> Response:
    state: ApiState = request.app.state.flowbus
    params = request.query_params
    fields = {name: params.get(name, "").strip()[:200] for name in ("type", "source", "chain", "since", "until", "tz")}
    problems: list[str] = []
    bounds = {}
    for name in ("since", "until"):
        bounds[name] = local_time(fields[name], fields["tz"]) if fields[name] else None
        if fields[name] and bounds[name] is None:
            problems.append(f"{name} is not a time (YYYY-MM-DDTHH:MM)")
    where = EventFilter(fields["type"] or None, fields["source"] or None, fields["chain"] or None,
                        bounds["since"], bounds["until"])  # fmt: skip
    cursor = params.get("cursor", "")
    found = await state.backend(session.project).list_events(
        where, before=cursor if ID_PATTERN.match(cursor) else MAX_ID, limit=PAGE + 1
    )
    shown, next_cursor = reads.split_page(found, PAGE, lambda e: e.id)
    kept = {k: v for k, v in fields.items() if v}
    return html(request, "events.html", session, nav="events", events=shown, fields=kept, problems=problems,
                next_cursor=next_cursor)  # fmt: skip


async def _dedup_verdict(backend: Backend, event: EventInstance) -> str:
    """Whether the message that brought the chain in could be deduplicated, and by which id."""
    # a chain that a message started carries the message's id as its correlation id
    carrier = await backend.get_message(event.correlation_id)
    if carrier is None:
        return "its chain began with an event published directly (from Python or the CLI): no message, no dedup id"
    if carrier.dedup_id is None:
        return f"its message {carrier.id} had no dedup id: every send of it runs"
    return (f"its message {carrier.id} had dedup id {carrier.dedup_id!r}: a send with the same id within "
            "the dedup window is dropped, answered with this message's id")  # fmt: skip


@page
async def event_page(request: Request, session: Session) -> Response:
    state: ApiState = request.app.state.flowbus
    backend = state.backend(session.project)
    event_id = request.path_params["event_id"]
    event = await backend.get_event(event_id)
    if event is None:
        return refused(request, session, 404, f"no event {event_id!r} in project {session.project!r}")
    runs = await backend.runs_for_event(event.id)
    data = thaw(event.data)
    try:
        answer = matching.for_event((await state.active(session.project)).plan, event.type, data)
    except ApiError as exc:
        answer = matching.Answer(event.type, [], [], [exc.message])
    return html(request, "event.html", session, nav="events", event=event, runs=runs, answer=answer,
                dedup=await _dedup_verdict(backend, event), sent=request.query_params.get("sent", ""))  # fmt: skip


@action
async def send_again(request: Request, session: Session, form: Form) -> Response:
    """Queue the event again, as a new message without a dedup id: a worker publishes it anew."""
    state: ApiState = request.app.state.flowbus
    event_id = request.path_params["event_id"]
    event = await state.backend(session.project).get_event(event_id)
    if event is None:
        return refused(request, session, 404, f"no event {event_id!r} in project {session.project!r}")
    active = await state.active(session.project)
    try:
        message = event_message(active.plan, event.type, thaw(event.data), event.source, config_version=active.version)
    except FlowbusError as exc:
        return refused(request, session, 422, f"the active config refuses it: {exc.message}")
    [message_id] = await state.sender(session.project).send([message])
    query = urlencode({"sent": message_id})
    return RedirectResponse(f"/p/{session.project}/events/{event.id}?{query}", status_code=303)


@page
async def match_page(request: Request, session: Session) -> Response:
    """The dry run: which flows (for a source's payload) or handlers (for an event) would run."""
    state: ApiState = request.app.state.flowbus
    params = request.query_params
    fields = {name: params.get(name, "").strip() for name in ("mode", "source", "event_type", "event")}
    fields["payload"] = params.get("payload", "")[:MAX_PAYLOAD_CHARS]
    answer, problem = None, None
    if fields["payload"] or fields["source"] or fields["event"]:
        try:
            payload = jsonio.loads(fields["payload"] or "{}")
        except jsonio.JsonError as exc:
            problem = f"the payload is not JSON: {exc.message}"
        else:
            try:
                plan = (await state.active(session.project)).plan
            except ApiError as exc:
                return refused(request, session, 409, exc.message)
            if fields["mode"] == "event":
                data = payload if isinstance(payload, Mapping) else {}
                answer = matching.for_event(plan, fields["event"], data)
            else:
                answer = matching.for_message(plan, fields["source"], fields["event_type"] or None, payload)
    return html(request, "match.html", session, nav="events", fields=fields, answer=answer, problem=problem,
                version=await state.backend(session.project).active_version())  # fmt: skip
