"""What `flowbus run` and `flowbus serve` share: the listening socket."""

from __future__ import annotations

import asyncio
import socket

from flowbus.cli import serving


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
