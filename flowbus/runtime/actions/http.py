"""The http action: one request to an HTTP target, retried on transient failures.

Requests run in a worker thread with the standard library's client, so the core needs no
HTTP dependency. Every request carries ``Idempotency-Key: <execution key>:<step key>``, the same
on every attempt at the same work, so a server that honours it applies a retried request once.
With tracing on, each attempt is a client span and sends its ``traceparent`` on.
"""

from __future__ import annotations

import asyncio
import random
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from flowbus import jsonio
from flowbus.config.model import HttpTarget
from flowbus.config.steps import HttpStep
from flowbus.config.values import type_name
from flowbus.errors import StepFailed
from flowbus.runtime.actions.builtins import builtin_action
from flowbus.runtime.context import StepContext
from flowbus.telemetry import tracing

MAX_RESPONSE_BYTES = 1024 * 1024
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
BASE_BACKOFF_S = 0.2


class _Transient(Exception):
    """A failure worth another attempt."""


@builtin_action(HttpStep)
async def http(ctx: StepContext, params: dict[str, Any]) -> Any:
    step = ctx.step.model
    target = ctx.run.host.plan.targets.get(getattr(step, "target", ""))
    if not isinstance(step, HttpStep) or not isinstance(target, HttpTarget):
        raise StepFailed(f"step {ctx.step.id!r} needs a target of type http")
    request = _build_request(target, step, params, ctx.idempotency_key)
    last_error = ""
    for attempt in range(1, target.max_attempts + 1):
        try:
            return await _attempt(request, target.timeout_s, attempt)
        except _Transient as exc:
            last_error = str(exc)
            if attempt < target.max_attempts:
                await asyncio.sleep(BASE_BACKOFF_S * 2 ** (attempt - 1) * (0.5 + random.random()))
    raise StepFailed(f"{step.method} {request.full_url} failed after {target.max_attempts} attempts: {last_error}")


async def _attempt(request: urllib.request.Request, timeout_s: float, attempt: int) -> dict[str, Any]:
    """One request; with tracing on, in a client span whose context it carries (``traceparent``)."""
    traces = tracing()
    if traces is None:
        return await asyncio.to_thread(_send, request, timeout_s)
    parts = urllib.parse.urlsplit(request.full_url)
    method = request.get_method()
    attributes = {
        "http.request.method": method, "url.full": request.full_url, "server.address": parts.hostname,
        "server.port": parts.port, "http.request.resend_count": attempt - 1 if attempt > 1 else None,
    }  # fmt: skip
    with traces.span(method, attributes, kind="CLIENT") as span:
        for name, value in traces.headers().items():
            request.add_header(name.capitalize(), value)
        response = await asyncio.to_thread(_send, request, timeout_s)
        span.set_attribute("http.response.status_code", response["status"])
        return response


def _build_request(
    target: HttpTarget, step: HttpStep, params: dict[str, Any], idempotency_key: str
) -> urllib.request.Request:
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
    return urllib.request.Request(url, data=data, headers=headers, method=step.method)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _send(request: urllib.request.Request, timeout_s: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return _response(response.status, response.headers, response.read(MAX_RESPONSE_BYTES + 1))
    except urllib.error.HTTPError as exc:
        if exc.code in RETRY_STATUSES:
            raise _Transient(f"HTTP {exc.code}") from None
        body = _response(exc.code, exc.headers, exc.read(MAX_RESPONSE_BYTES + 1))["body"]
        raise StepFailed(
            f"{request.get_method()} {request.full_url} answered HTTP {exc.code}: {str(body)[:200]}"
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise _Transient(str(getattr(exc, "reason", exc))) from None


def _response(status: int, headers: Any, raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_RESPONSE_BYTES:
        raise StepFailed(f"the response is larger than {MAX_RESPONSE_BYTES:,} bytes")
    body: Any = raw.decode("utf-8", errors="replace")
    if "json" in headers.get("Content-Type", "") and raw:
        body = jsonio.loads(raw)
    return {"status": status, "body": body}
