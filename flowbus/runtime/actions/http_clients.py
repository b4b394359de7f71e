"""The HTTP clients of a runner: one pooled ``httpx.AsyncClient`` per HTTP target.

A client is made at a target's first request, with the target's timeout, and kept: its
connections stay open between requests (keep-alive), so a step calling the same API again does
not pay a new TCP (and TLS) handshake. A runner of a new config version takes the clients of the
old one over (:meth:`~flowbus.runtime.runner.Runner.switched`); a target whose timeout changed
gets a new client. :meth:`HttpClients.close` closes them all: the worker calls it when it stops,
and :meth:`~flowbus.engine.Engine.close` does.

A client keeps no cookies (a cookie answered to one message's request is not sent with another's),
follows no redirect itself (the http action follows those within the target's origin only), and
verifies a server's certificate against the system's certificate store (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` honoured), as ``ssl.create_default_context`` does, so an internal CA trusted by
the machine is trusted here too.

A client belongs to the event loop it was made in; a request from another loop (a second
``asyncio.run`` over the same engine) gets clients of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import ssl
from typing import TYPE_CHECKING

from flowbus.config.model import HttpTarget

if TYPE_CHECKING:
    import httpx

#: connections kept open per target, and the most in use at once
MAX_CONNECTIONS = 100
MAX_KEEPALIVE = 20
#: how long an idle connection is kept before it is closed
KEEPALIVE_EXPIRY_S = 30.0


class HttpClients:
    """One ``httpx.AsyncClient`` per HTTP target, made at first use and closed by :meth:`close`."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float], httpx.AsyncClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self, target: HttpTarget) -> httpx.AsyncClient:
        """The client of ``target`` (its timeout included), made now if it has none yet."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # a client cannot be used, nor closed, outside the loop it was made in
            self._clients = {}
            self._loop = loop
        key = (target.name, target.timeout_s)
        found = self._clients.get(key)
        if found is None:
            import httpx  # noqa: PLC0415 - not a cost of starting a process that makes no request

            # httpx loads its network backend at its first request: loaded here instead, so that a
            # first request is not late by a tenth of a second after its turn of a rate limit
            with contextlib.suppress(ImportError):
                import httpcore._backends.anyio  # noqa: F401, PLC0415

            limits = httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_KEEPALIVE,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            )
            found = httpx.AsyncClient(
                timeout=target.timeout_s,
                limits=limits,
                follow_redirects=False,
                cookies=no_cookies(),
                verify=ssl.create_default_context(),
            )
            self._clients[key] = found
        return found

    def __len__(self) -> int:
        return len(self._clients)

    async def close(self) -> None:
        """Close every client and its connections; a later request makes new ones."""
        clients, self._clients = list(self._clients.values()), {}
        if self._loop is not asyncio.get_running_loop():
            return  # made in a loop that is gone: their connections went with it
        for client in clients:
            await client.aclose()


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that refuses every cookie (no domain is allowed), so it sends none either."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
