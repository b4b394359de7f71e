"""The http action: one request to an HTTP target, retried on transient failures.

Requests go through the target's pooled client (:mod:`flowbus.runtime.actions.http_clients`),
so connections are reused between steps and runs. Every request carries
``Idempotency-Key: <execution key>:<step key>``, the same on every attempt at the same work, so a
server that honours it applies a retried request once. With tracing on, each attempt is a client
span and sends its ``traceparent`` on.

The other side's limits, and the target's own:

- a target with a ``rate_limit`` takes a turn of its shared limiter (:mod:`flowbus.runtime.actions.rate`)
  before every request: a short wait is waited out in the step, a longer one gives the message back
  until its turn (:class:`~flowbus.errors.Deferred`, no attempt spent) before the step's first
  request; before a retry in the step, a turn too far away to wait for fails the step with the last
  error instead, so that the queue's retry policy spends an attempt (else a message failing behind
  a slow limit would be given back, and start again at its first request, for ever);
- an answer 429 or 503 with ``Retry-After`` (seconds or an HTTP date) gives the message back until
  then, without spending an attempt, and holds the target's limiter until then too, so that other
  workers' calls wait as well. A wait longer than the target's ``max_retry_after``, or a message
  given back ``max_deferrals`` times already, is an ordinary failure instead. Outside a queued message
  (``Engine.run_flow``) there is nothing to give back: the answer is retried in the step, as any 429.
  A ``Retry-After`` that is neither whole seconds nor an HTTP date is ignored (retried in the step).

Redirects are followed within the target's origin (scheme, host and port) only; a redirect to
another origin fails the step, not retried, as it would carry the target's headers and body there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import re
import urllib.parse
from typing import TYPE_CHECKING, Any, NamedTuple

from flowbus import jsonio
from flowbus.config.model import HttpTarget
from flowbus.config.steps import HttpStep
from flowbus.config.values import type_name
from flowbus.errors import Deferred, StepFailed
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.actions.rate import take_turn
from flowbus.runtime.context import StepContext
from flowbus.telemetry import tracing

if TYPE_CHECKING:
    import httpx

MAX_RESPONSE_BYTES = 1024 * 1024
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: the statuses whose ``Retry-After`` gives the message back
RETRY_AFTER_STATUSES = frozenset({429, 503})
BASE_BACKOFF_S = 0.2
#: the redirects followed within the target's origin, at most, for one request
MAX_REDIRECTS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}
#: a ``Retry-After`` in seconds: ASCII digits only (``str.isdigit`` takes "²" too)
RETRY_AFTER_SECONDS = re.compile(r"[0-9]{1,10}")


class Request(NamedTuple):
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


class _Transient(Exception):
    """A failure worth another attempt; ``retry_after``: the seconds the server asked for, if it did."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@builtin_action(HttpStep)
async def http(ctx: StepContext, params: dict[str, Any]) -> Any:
    step = ctx.step.model
    target = ctx.run.host.plan.targets.get(getattr(step, "target", ""))
    if not isinstance(step, HttpStep) or not isinstance(target, HttpTarget):
        raise StepFailed(f"step {ctx.step.id!r} needs a target of type http")
    request = _build_request(target, step, params, ctx.idempotency_key)
    client = ctx.run.host.http_clients.client(target)
    message = ctx.run.source.message
    last_error = ""
    for attempt in range(1, target.max_attempts + 1):
        if target.rate_limit is not None:
            try:
                await take_turn(ctx.run.host.store, target, queued=message is not None)
            except Deferred:
                if attempt == 1:
                    raise
                # a retry whose turn is too far away to wait for: giving the message back would
                # start it again at its first request and spend no attempt, for ever; fail instead,
                # so that the queue's retry policy spends one
                raise StepFailed(
                    f"{request.method} {request.url} failed after {attempt - 1} attempts: {last_error} "
                    f"(the next turn of target {target.name}'s rate limit is too far away to retry in the step)"
                ) from None
        try:
            return await _attempt(client, request, attempt)
        except _Transient as exc:
            last_error = str(exc)
            if exc.retry_after is not None and message is not None:
                await _defer(ctx, target, request, exc.retry_after, message.deferrals)
            if attempt < target.max_attempts:
                await asyncio.sleep(BASE_BACKOFF_S * 2 ** (attempt - 1) * (0.5 + random.random()))
    raise StepFailed(f"{request.method} {request.url} failed after {target.max_attempts} attempts: {last_error}")


async def _defer(ctx: StepContext, target: HttpTarget, request: Request, wait_s: float, deferrals: int) -> None:
    """Give the message back ``wait_s`` from now (the server's ``Retry-After``), holding the target's
    limiter until then; or fail the step, when the wait is past the cap or the message has been
    given back too often."""
    cap = target.max_retry_after.total_seconds()
    said = f"{request.method} {request.url} answered Retry-After {wait_s:g}s"
    if wait_s > cap:
        raise StepFailed(f"{said}, longer than max_retry_after ({cap:g}s)")
    if deferrals >= target.max_deferrals:
        raise StepFailed(f"{said}; the message was given back {deferrals} times already (max_deferrals)")
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(seconds=wait_s)
    if target.rate_limit is not None:
        await ctx.run.host.store.take_rate(
            target.name, now=now.timestamp(), interval_s=0.0, max_wait_s=float("inf"), not_before=until.timestamp()
        )
    raise Deferred(until, f"throttled: {said}", target=target.name, counted=True)


async def _attempt(client: httpx.AsyncClient, request: Request, attempt: int) -> dict[str, Any]:
    """One request; with tracing on, in a client span whose context it carries (``traceparent``)."""
    traces = tracing()
    if traces is None:
        return await _send(client, request)
    parts = urllib.parse.urlsplit(request.url)
    attributes = {
        "http.request.method": request.method, "url.full": request.url, "server.address": parts.hostname,
        "server.port": parts.port, "http.request.resend_count": attempt - 1 if attempt > 1 else None,
    }  # fmt: skip
    with traces.span(request.method, attributes, kind="CLIENT") as span:
        headers = {**request.headers, **{name.capitalize(): value for name, value in traces.headers().items()}}
        response = await _send(client, request._replace(headers=headers))
        span.set_attribute("http.response.status_code", response["status"])
        return response


def _build_request(target: HttpTarget, step: HttpStep, params: dict[str, Any], idempotency_key: str) -> Request:
    path = params["path"]
    if not isinstance(path, str):
        raise StepFailed(f"path must be a string, got {type_name(path)}")
    url = target.base_url.rstrip("/") + ("/" + path.lstrip("/") if path else "")
    query = params["query"]
    if query:
        url += "?" + urllib.parse.urlencode({k: _text(v) for k, v in query.items() if v is not None})
    # a header or query value that evaluates to null is left out, not sent as text
    headers = {**target.headers, **{k: _text(v) for k, v in params["headers"].items() if v is not None}}
    headers.setdefault("Idempotency-Key", idempotency_key)
    headers.setdefault("Accept", "application/json")
    body = params["body"]
    data = None
    if body is not None:
        data = jsonio.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    return Request(step.method, url, headers, data)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _send(client: httpx.AsyncClient, request: Request) -> dict[str, Any]:
    """One request, following redirects within the target's origin (scheme, host and port) only:
    a redirect elsewhere would carry the target's headers (its credentials) and, on 307 and 308,
    the body to another server, so it fails the step instead (not retried)."""
    import httpx  # noqa: PLC0415 - imported by the client pool before any request

    sent = client.build_request(request.method, request.url, headers=request.headers, content=request.content)
    origin = _origin(sent.url)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            r = await client.send(sent, stream=True, follow_redirects=False)
            try:
                raw = await _read(r)
            finally:
                await r.aclose()
        except (httpx.TransportError, TimeoutError, ConnectionError) as exc:
            raise _Transient(str(exc) or type(exc).__name__) from None
        if r.next_request is None:
            break
        if _origin(r.next_request.url) != origin:
            raise StepFailed(
                f"{request.method} {request.url} answered HTTP {r.status_code}, a redirect to another origin "
                f"({_text_origin(r.next_request.url)}): not followed, only redirects within the target's are"
            )
        sent = r.next_request
    else:
        raise StepFailed(f"{request.method} {request.url} was redirected more than {MAX_REDIRECTS} times")
    if r.status_code >= 400:
        if r.status_code in RETRY_STATUSES:
            retry_after = _retry_after(r.headers.get("Retry-After")) if r.status_code in RETRY_AFTER_STATUSES else None
            raise _Transient(f"HTTP {r.status_code}", retry_after)
        body = _response(r.status_code, r.headers, raw)["body"]
        raise StepFailed(f"{request.method} {request.url} answered HTTP {r.status_code}: {str(body)[:200]}")
    return _response(r.status_code, r.headers, raw)


async def _read(response: httpx.Response) -> bytes:
    """The body, read no further than one byte past :data:`MAX_RESPONSE_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)


def _retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from ``now`` a ``Retry-After`` asks for: whole seconds (ASCII digits, at most 10), or
    an HTTP date (a date in the past: 0); None when there is none or it is neither (a date past
    what a datetime holds included)."""
    if value is None or len(value) > 64:
        return None
    value = value.strip()
    if RETRY_AFTER_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # an HTTP date is GMT
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """A URL's origin: its scheme, host and port (the scheme's own port when it names none)."""
    return url.scheme, url.host, url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme)


def _text_origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', errors='replace')}"


def _response(status: int, headers: Any, raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_RESPONSE_BYTES:
        raise StepFailed(f"the response is larger than {MAX_RESPONSE_BYTES:,} bytes")
    body: Any = raw.decode("utf-8", errors="replace")
    if "json" in headers.get("Content-Type", "") and raw:
        body = jsonio.loads(raw)
    return {"status": status, "body": body}
