"""Pages as HTML: Jinja templates shipped in the package, every value escaped (autoescape on),
and headers that allow the page's own scripts and styles only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from flowbus import jsonio
from flowbus.api.dashboard.session import Session
from flowbus.events.frozen import thaw

#: no inline script or style may run: htmx and the dashboard's own script are files of this origin
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: dt.datetime | None) -> Markup:
    """A time in UTC, which the page's script shows in the viewer's zone."""
    if value is None:
        return Markup("")
    utc = value.astimezone(dt.UTC)
    return Markup('<time datetime="{}">{}</time>').format(utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S UTC"))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def pretty(value: Any) -> str:
    """Data as indented JSON (exact decimals, ISO times)."""
    try:
        return jsonio.dumps(thaw(value), indent=2)
    except jsonio.JsonError:
        return repr(value)


def short(value: Any, width: int = 80) -> str:
    text = pretty(value).replace("\n", " ")
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


ENV = Environment(
    loader=PackageLoader("flowbus.api.dashboard", "templates"), autoescape=select_autoescape(default=True)
)
ENV.filters.update(when=when, duration=duration, pretty=pretty, short=short)


def html(
    request: Request, template: str, session: Session | None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page (or a fragment, for htmx) rendered with the session's project and CSRF token."""
    text = ENV.get_template(template).render(request=request, session=session, **context)
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)
