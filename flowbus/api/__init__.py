"""The HTTP API: ingress, reads, admin, health, and the dashboard. An ASGI app built by
:func:`create_app`: the ingest app (:mod:`flowbus.api.ingest`, plain Starlette, the hot path) in
front, and behind it the FastAPI app of everything else."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from flowbus.api import admin, ingest, ingest_operations, reads
from flowbus.api.dashboard import mount as dashboard
from flowbus.api.errors import ApiError
from flowbus.api.state import DEFAULT_PROJECT, ApiState
from flowbus.errors import FlowbusError, StoreError
from flowbus.metrics import PROCESS
from flowbus.publishing import VersionNotFound
from flowbus.queue import MessageState, QueueName

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    """The process is up and serves requests.

    It does not look at the store: a store that is away is waited out (the backend reconnects by
    itself), which a restart would not do any sooner. ``/readyz`` says whether it answers now.
    """
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers now: 503 while it is away, 200 again once the backend has reconnected."""
    state: ApiState = request.app.state.flowbus
    try:
        await state.backend(DEFAULT_PROJECT).active_version()
    except FlowbusError as exc:
        return JSONResponse({"status": "unavailable", "error": exc.message}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Prometheus text format; queue depth, dead letters, oldest messages, messages held back by flow control
    and records kept, read from the store now."""
    state: ApiState = request.app.state.flowbus
    PROCESS.queue_depth.clear()
    PROCESS.queue_oldest_age.clear()
    PROCESS.messages_held.clear()
    now = dt.datetime.now(dt.UTC)
    for project, backend in state.backends().items():
        oldest = {queue: now for queue in QueueName}
        for stat in await backend.queue_stats():
            if stat.state is not MessageState.DEAD:
                oldest[stat.queue] = min(oldest[stat.queue], stat.oldest)
        for queue, sent_at in oldest.items():
            PROCESS.queue_oldest_age.labels(project, queue).set(max((now - sent_at).total_seconds(), 0.0))
        dead = 0
        for (queue, message_state), count in (await backend.queue_depth()).items():
            PROCESS.queue_depth.labels(project, queue, message_state).set(count)
            dead += count if message_state is MessageState.DEAD else 0
        PROCESS.dead_letters.labels(project).set(dead)
        for held in await backend.held_stats():
            PROCESS.messages_held.labels(project, held.queue, held.held).set(held.messages)
        now = dt.datetime.now(dt.UTC)
        for kept in await backend.kept():
            PROCESS.kept_rows.labels(project, kept.kind.value).set(kept.rows)
            age = (now - kept.oldest).total_seconds() if kept.oldest is not None else 0.0
            PROCESS.oldest_kept_seconds.labels(project, kept.kind.value).set(max(0.0, age))
    return Response(generate_latest(PROCESS.registry), media_type=CONTENT_TYPE_LATEST)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's path takes.

    Starlette answers 405 with the methods of the first route whose path matches; a path served
    by two routes (the ingest route and a read, such as ``/events``) takes the methods of both.
    Asked of the router method by method: only a 405 pays for it.
    """
    return [method for method in _METHODS if _routed(request.app.router.routes, {**request.scope, "method": method})]


def _routed(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    """Whether a route takes the request ``scope`` describes; a mount (the dashboard) takes it
    only when one of its own routes does, since a mount matches by path alone."""
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        if not isinstance(route, Mount) or _routed(route.routes, {**scope, **child}):
            return True
    return False


def _said(error: Any) -> str:
    """A validation error's message; flowbus's own checks speak without pydantic's prefix."""
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return str(error["msg"])


async def api_error(request: Request, exc: ApiError) -> Response:
    return exc.response()


async def store_error(request: Request, exc: StoreError) -> Response:
    # the database is down or refused: the client may retry; the details are for the log
    logger.warning("store error on %s %s: %s", request.method, request.url.path, exc.message)
    return ApiError(503, "the store is unavailable; retry later", headers={"Retry-After": "1"}).response()


async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
    # nobody is left to answer: say so in one line, not with a traceback
    logger.warning("the client went away before its request was read: %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def version_not_found(request: Request, exc: VersionNotFound) -> Response:
    return ApiError(404, exc.message).response()


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return ApiError(exc.status_code, str(exc.detail), headers=headers).response()


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    # one shape for every refusal, FastAPI's own checks included
    issues = [{"where": ".".join(str(p) for p in e["loc"]), "message": _said(e)} for e in exc.errors()]
    return ApiError(422, "the request is not valid", issues=issues).response()


#: how each app answers what it raises: one shape for every refusal, in front and behind
EXCEPTION_HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    ApiError: api_error,
    StoreError: store_error,
    ClientDisconnect: client_gone,
    VersionNotFound: version_not_found,
    StarletteHTTPException: http_error,
    RequestValidationError: invalid_request,
}


def create_app(db: str, *, max_body_bytes: int = 256 * 1024) -> Starlette:
    """The whole HTTP API of the database ``db``: the ingest app, the FastAPI app behind it."""
    state = ApiState(db=db, max_body_bytes=max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.close()

    return ingest.create_app(state, behind=_api(state), lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)


def _api(state: ApiState) -> FastAPI:
    """Reads, admin, health and the dashboard; and, for its document, the ingest operations."""
    app = FastAPI(title="flowbus", version="1", docs_url="/docs", redoc_url=None, exception_handlers=EXCEPTION_HANDLERS)
    app.state.flowbus = state
    # first: probes come often, and each router passed costs a path match
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", metrics, methods=["GET"])
    app.include_router(ingest_operations.router)
    app.include_router(reads.router)
    app.include_router(admin.router)
    # last: it answers every path, so the API's routes must be tried before it
    app.router.routes.append(dashboard())
    return app


__all__ = ["create_app"]
