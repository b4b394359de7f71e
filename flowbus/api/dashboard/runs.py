"""The runs list (filtered, keyset-paged, new runs polled in) and a run's timeline."""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowbus import ids, reads
from flowbus.api.dashboard.access import Form, action, page, refused
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session
from flowbus.api.dashboard.timeline import timeline
from flowbus.api.state import ApiState
from flowbus.ids import MAX_ID, floor_id
from flowbus.queue import MessageState
from flowbus.runtime.records import Run, RunStatus, Trigger
from flowbus.stores.protocols import RunFilter

PAGE = 50
#: a UUIDv7 id as flowbus writes it (runs, events, messages)
ID_PATTERN = re.compile(ids.ID_PATTERN)
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


class RunQuery(NamedTuple):
    """The runs list's filters as the page's form sends them."""

    where: RunFilter
    #: ids bounding the time filter: ``since <= id < until``
    since: str | None
    until: str | None
    cursor: str | None
    #: the form's fields, to write them back into the form and the links
    fields: dict[str, str]
    problems: list[str]


def local_time(text: str, tz: str) -> dt.datetime | None:
    """A ``datetime-local`` value in the viewer's zone (``tz``: minutes east of UTC) as UTC; None
    when it is not one."""
    if not _LOCAL_TIME.match(text):
        return None
    try:
        offset = max(-1440, min(1440, int(tz or 0)))
        local = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
    except ValueError:  # a day or hour out of range, or a zone offset that is not a number
        return None
    return local.astimezone(dt.UTC)


def run_query(request: Request) -> RunQuery:
    params = request.query_params
    names = ("status", "flow", "handler", "trigger", "source", "event_type", "version", "since", "until", "tz")
    fields = {name: params.get(name, "").strip()[:200] for name in names}
    problems = []
    status = fields["status"] if fields["status"] in set(RunStatus) else None
    trigger = fields["trigger"] if fields["trigger"] in set(Trigger) else None
    bounds: dict[str, str | None] = {}
    for name in ("since", "until"):
        moment = local_time(fields[name], fields["tz"]) if fields[name] else None
        if fields[name] and moment is None:
            problems.append(f"{name} is not a time (YYYY-MM-DDTHH:MM)")
        bounds[name] = floor_id(moment) if moment is not None else None
    version = fields["version"].removeprefix("v")
    if version and not (version.isdigit() and int(version) < 2**31):
        problems.append("the config version is a number, such as 3")
    cursor = params.get("cursor")
    where = RunFilter(
        flow=fields["flow"] or None,
        handler=fields["handler"] or None,
        status=RunStatus(status) if status else None,
        trigger=Trigger(trigger) if trigger else None,
        config_version=int(version) if version.isdigit() and int(version) < 2**31 else None,
        source=fields["source"] or None,
        event_type=fields["event_type"] or None,
    )
    return RunQuery(where, bounds["since"], bounds["until"], cursor if cursor and ID_PATTERN.match(cursor) else None,
                    {k: v for k, v in fields.items() if v}, problems)  # fmt: skip


async def _page(state: ApiState, project: str, query: RunQuery) -> tuple[list[Run], str | None]:
    """One page, newest first, and the cursor of the next (the time window bounds the id range)."""
    before = min(query.cursor or MAX_ID, query.until or MAX_ID)
    found = await state.backend(project).list_runs(query.where, before=before, limit=PAGE + 1)
    if query.since is not None:
        found = [r for r in found if r.id >= query.since]
    shown, next_cursor = reads.split_page(found, PAGE, lambda r: r.id)
    return list(shown), next_cursor


@page
async def runs_page(request: Request, session: Session) -> Response:
    query = run_query(request)
    runs, next_cursor = await _page(request.app.state.flowbus, session.project, query)
    live = query.cursor is None and query.until is None
    return html(request, "runs.html", session, nav="runs", runs=runs, next_cursor=next_cursor, query=query,
                live=live, top=runs[0].id if runs else floor_id(dt.datetime.now(dt.UTC)),
                retried=request.query_params.get("retried", ""), left=request.query_params.get("left", ""),
                statuses=list(RunStatus), triggers=list(Trigger))  # fmt: skip


#: runs one bulk retry takes at most
MAX_RETRY = 500


@action
async def retry_runs(request: Request, session: Session, form: Form) -> Response:
    """Retry failed runs: the dead-lettered messages they ran for are redriven on the active version
    (a run whose message is still being retried, or was retried already, is left alone)."""
    backend = request.app.state.flowbus.backend(session.project)
    dead: set[str] = set()
    chosen = [i for i in form.get("runs", []) if ID_PATTERN.match(i)][:MAX_RETRY]
    for run_id in chosen:
        run = await backend.get_run(run_id)
        message = await backend.get_message(run.message_id) if run is not None and run.message_id else None
        if message is not None and message.state is MessageState.DEAD:
            dead.add(message.id)
    retried = await backend.redrive(sorted(dead), config_version=await backend.active_version()) if dead else 0
    query = urlencode({"retried": retried, "left": len(chosen) - len(dead)})
    return RedirectResponse(f"/p/{session.project}/runs?{query}", status_code=303)


@page
async def newer_runs(request: Request, session: Session) -> Response:
    """The runs after ``after`` that match the filters: polled by the first page of the list."""
    query = run_query(request)
    after = request.query_params.get("after", "")
    if not ID_PATTERN.match(after):
        return refused(request, session, 422, "after must be a run id")
    found = await request.app.state.flowbus.backend(session.project).list_runs(query.where, limit=PAGE)
    fresh = [r for r in found if r.id > after]
    return html(request, "runs_newer.html", session, runs=fresh, query=query, top=fresh[0].id if fresh else after)


@page
async def run_page(request: Request, session: Session) -> Response:
    state: ApiState = request.app.state.flowbus
    run_id = request.path_params["run_id"]
    run = await state.backend(session.project).get_run(run_id)
    if run is None:
        return refused(request, session, 404, f"no run {run_id!r} in project {session.project!r}")
    return html(request, "run.html", session, nav="runs", run=run,
                timeline=await timeline(state.backend(session.project), run))  # fmt: skip
