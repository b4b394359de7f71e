"""What `flowbus run` and `flowbus serve` share: the listening socket, the count of requests in
hand that a worker in the same process gives way to, and the tuning of the cycle collector."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest
from starlette.types import Receive, Scope, Send

from flowbus.cli import serving
from flowbus.cli.options import GC_YOUNG_ALLOCATIONS, steady_collector
from flowbus.foreground import Foreground


async def test_connections_accepted_on_the_listening_socket_have_nagle_off():
    # with it on, a response written as its headers, then its body, waited for the client's
    # delayed acknowledgement of the headers: about 40 ms a request
    sock = serving.listen("127.0.0.1", 0)
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        assert await asyncio.wait_for(nodelay, 5) != 0
        writer.close()


async def test_an_http_request_is_in_hand_from_its_start_to_its_end_even_when_it_fails():
    foreground = Foreground()
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["type"], foreground.in_hand))
        if scope["type"] == "http":
            raise RuntimeError("the endpoint failed")

    counting = serving.counted(app, foreground)
    await counting({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await counting({"type": "http"}, None, None)  # type: ignore[arg-type]
    assert seen == [("lifespan", 0), ("http", 1)]
    assert foreground.in_hand == 0


def test_a_long_running_process_freezes_what_it_loaded_and_collects_cycles_less_often():
    # the collections of the older generations, every few runs at the default thresholds, held
    # flowbus run's event loop for tens of milliseconds, and the API's requests waited for them
    before = gc.get_threshold()
    try:
        steady_collector()
        assert gc.get_threshold()[0] == GC_YOUNG_ALLOCATIONS > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
