"""Who may see a page and who may change something: a session of the page's project for every
page; the admin scope and the session's CSRF token for every form that changes something."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session, csrf_holds, current
from flowbus.api.ingest import read_body
from flowbus.api.state import ApiState

Page = Callable[[Request, Session], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
Form = dict[str, list[str]]
Action = Callable[[Request, Session, Form], Awaitable[Response]]

#: the largest form the dashboard reads (a dry-run payload is the biggest)
#: the largest form of a signed-in session: a config draft of up to MAX_DRAFT_CHARS, url-encoded
#: (up to three bytes a character); the sign-in form, which anyone may send, has a small limit
MAX_FORM_BYTES = 16 * 1024 * 1024


def refused(request: Request, session: Session | None, status: int, message: str) -> Response:
    return html(request, "refused.html", session, status=status, message=message)


async def _session(request: Request) -> Session | Response:
    state: ApiState = request.app.state.flowbus
    session = await current(state, request)
    if session is None:
        if request.headers.get("hx-request"):
            # a poll of a page whose session ended: send the whole page to the sign-in form
            return Response(status_code=401, headers={"HX-Redirect": "/"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/?next={quote(target)}", status_code=303)
    project = request.path_params["project"]
    if session.project != project:
        return refused(request, session, 403, f"you are signed in to project {session.project!r}, not {project!r}")
    return session


def page(handler: Page) -> Endpoint:
    """A page of the session's project (read or admin scope)."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        session = await _session(request)
        return session if isinstance(session, Response) else await handler(request, session)

    return endpoint


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> Form:
    """The url-encoded form of a POST, refused (413) past ``limit`` bytes before more than that
    is read."""
    body = await read_body(request, limit)
    return parse_qs(body.decode(errors="replace"), keep_blank_values=True)


def action(handler: Action) -> Endpoint:
    """A form that changes something: the admin scope and the session's CSRF token."""
    return _form(handler, admin=True)


def signed_form(handler: Action) -> Endpoint:
    """A form any session may send (signing out), still with its CSRF token."""
    return _form(handler, admin=False)


def _form(handler: Action, *, admin: bool) -> Endpoint:
    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        session = await _session(request)
        if isinstance(session, Response):
            return session
        if admin and not session.admin:
            return refused(request, session, 403, "this needs an admin key; you signed in with a read key")
        form = await read_form(request)
        if not csrf_holds(session, first(form, "csrf")):
            return refused(request, session, 403, "the form's CSRF token is missing or stale; reload the page")
        return await handler(request, session, form)

    return endpoint


def first(form: Form, name: str) -> str:
    return (form.get(name) or [""])[0]
