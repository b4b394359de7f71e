"""What ``flowbus run`` and ``flowbus serve`` share: a listening socket bound before anything
starts, and a uvicorn server that leaves SIGINT and SIGTERM to flowbus, so both stop gracefully
and exit 0. Imported only once the server extra is known to be installed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator

import click
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from flowbus.api import create_app
from flowbus.cli.exit_codes import ExitCode
from flowbus.foreground import Foreground


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; when it cannot be had (the port is taken, the address
    is not this machine's), a one-line reason and exit code 5, before any config is published."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listening = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        click.echo(f"error: cannot listen on {host}:{port}: {reason}; choose another with --host or --port", err=True)
        sys.exit(ExitCode.FAILED)
    # asyncio turns Nagle's algorithm off only on sockets whose protocol says TCP, and a socket
    # accepted inherits its listener's, which create_server leaves 0: without this, a response
    # written as headers then body waited for the client's delayed ACK (about 40 ms a request)
    return socket.socket(listening.family, listening.type, socket.IPPROTO_TCP, fileno=listening.detach())


def api_server(
    db: str, host: str, port: int, *, max_body_kib: int, log_level: str, foreground: Foreground | None = None
) -> Server:
    """The HTTP API of ``db``, served by uvicorn (on the socket :func:`listen` gave); its requests
    counted in ``foreground`` when a worker shares the process."""
    app: ASGIApp = create_app(db, max_body_bytes=max_body_kib * 1024)
    if foreground is not None:
        app = counted(app, foreground)
    return Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))


def counted(app: ASGIApp, foreground: Foreground) -> ASGIApp:
    """``app``, its HTTP requests counted in ``foreground`` from their start to their answer."""

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        foreground.started()
        try:
            await app(scope, receive, send)
        finally:
            foreground.finished()

    return counting


class Server(uvicorn.Server):
    """uvicorn's server without its own signal handling (it re-raises SIGINT after shutdown,
    which a CLI would report as an abort)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def stop_on_signals(*stops: Callable[[], None]) -> None:
    """On SIGINT or SIGTERM, call every stop (in the running loop)."""

    def stop() -> None:
        for each in stops:
            each()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
