"""The config page: what the active version dispatches, every version with a structural diff
between any two, rollback, and the draft with its validation problems (saved, then published)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowbus.api.dashboard.access import Form, action, first, page, refused
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session
from flowbus.api.state import ApiState
from flowbus.config import ConfigError, load_config_text
from flowbus.config.issues import Issue, Severity
from flowbus.publishing import VersionNotFound, check_project, diff_versions, publish_config, rollback
from flowbus.stores.protocols import Backend

DRAFT_FILE = "draft.yaml"
#: the longest config the draft form takes (as the API's draft body)
MAX_DRAFT_CHARS = 5 * 1024 * 1024


def problems_of(text: str, project: str) -> list[Issue]:
    """The config's errors and warnings, none when it is valid."""
    try:
        loaded = load_config_text(text, file=DRAFT_FILE, keep=False)
        check_project(loaded, project)
    except ConfigError as exc:
        return list(exc.issues)
    return list(loaded.warnings)


async def _page(request: Request, session: Session, *, text: str | None = None, problems: list[Issue] | None = None,
                status: int = 200) -> Response:  # fmt: skip
    backend: Backend = request.app.state.flowbus.backend(session.project)
    active = await backend.active_version()
    versions = await backend.versions()
    draft = await backend.get_draft()
    if text is None:
        current = next((v for v in versions if v.number == active), None)
        text = draft[0] if draft is not None else current.text if current is not None else ""
        problems = problems_of(text, session.project) if draft is not None else []
    params = request.query_params
    return html(request, "config.html", session, status=status, nav="config", active=active,
                versions=list(reversed(versions)), manifest=await backend.manifest(), text=text,
                problems=problems or [], has_draft=draft is not None, refused=status != 200,
                published=params.get("published", ""), saved=params.get("saved", ""))  # fmt: skip


def _number(text: str) -> int | None:
    """A version number, bounded as the API's (no driver is handed an integer it cannot store)."""
    return int(text) if text.isdigit() and 1 <= int(text) < 2**31 else None


@page
async def config_page(request: Request, session: Session) -> Response:
    return await _page(request, session)


@page
async def diff_page(request: Request, session: Session) -> Response:
    backend: Backend = request.app.state.flowbus.backend(session.project)
    old, new = _number(request.query_params.get("old", "")), _number(request.query_params.get("new", ""))
    if old is None or new is None:
        return refused(request, session, 422, "choose two versions to compare (old and new)")
    try:
        diff = await diff_versions(backend, old, new)
    except VersionNotFound as exc:
        return refused(request, session, 404, exc.message)
    versions = [v.number for v in await backend.versions()]
    return html(request, "diff.html", session, nav="config", old=old, new=new, diff=diff, versions=versions[::-1])


@action
async def save_draft(request: Request, session: Session, form: Form) -> Response:
    """Save the draft when it is valid; with ``do=publish``, publish it as the next version too."""
    state: ApiState = request.app.state.flowbus
    backend = state.backend(session.project)
    text = first(form, "text").replace("\r\n", "\n")
    if len(text) > MAX_DRAFT_CHARS:
        return await _page(request, session, text="", problems=[], status=413)
    problems = problems_of(text, session.project)
    if any(p.severity is Severity.ERROR for p in problems):
        return await _page(request, session, text=text, problems=problems, status=422)
    await backend.save_draft(text, file=DRAFT_FILE)
    if first(form, "do") != "publish":
        return RedirectResponse(f"/p/{session.project}/config?saved=1", status_code=303)
    result = await publish_config(backend, text, file=DRAFT_FILE)
    return RedirectResponse(f"/p/{session.project}/config?published={result.version.number}", status_code=303)


@action
async def roll_back(request: Request, session: Session, form: Form) -> Response:
    backend: Backend = request.app.state.flowbus.backend(session.project)
    number = _number(request.path_params["number"])
    if number is None:
        return refused(request, session, 422, "a version is a number, such as 3")
    try:
        result = await rollback(backend, number)
    except VersionNotFound as exc:
        return refused(request, session, 404, exc.message)
    return RedirectResponse(f"/p/{session.project}/config?published={result.version.number}", status_code=303)
