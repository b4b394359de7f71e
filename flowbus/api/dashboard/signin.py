"""Signing in with an API key, and out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowbus.api.dashboard.access import Form, first, read_form, signed_form
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import COOKIE, SESSION_S, Session, SignInRefused, current, sign_in
from flowbus.api.state import ApiState

#: the sign-in form holds a key: anyone may send it, so it is read only this far
SIGN_IN_FORM_BYTES = 16 * 1024


def _home(project: str) -> str:
    return f"/p/{project}/"


def _next(target: str, project: str) -> str:
    """Where to go after signing in: a page of the key's own project, never another site."""
    return target if target.startswith(_home(project)) else _home(project)


async def signin_page(request: Request) -> Response:
    state: ApiState = request.app.state.flowbus
    session = await current(state, request)
    target = request.query_params.get("next", "")
    if session is not None:
        return RedirectResponse(_next(target, session.project), status_code=303)
    return html(request, "signin.html", None, next=target)


async def signin(request: Request) -> Response:
    state: ApiState = request.app.state.flowbus
    form = await read_form(request, SIGN_IN_FORM_BYTES)
    try:
        session, cookie = await sign_in(state, first(form, "key"))
    except SignInRefused as exc:
        return html(request, "signin.html", None, status=401, error=exc.message, next=first(form, "next"))
    response = RedirectResponse(_next(first(form, "next"), session.project), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=SESSION_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@signed_form
async def signout(request: Request, session: Session, form: Form) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
