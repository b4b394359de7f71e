"""Group commit for the ingress: the messages of concurrent requests go to the queue in one
``send``, so one transaction (one commit) serves every request that arrived while the previous
one was being written, instead of one transaction per request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from flowbus.queue import OutgoingMessage
from flowbus.stores.protocols import Queue

#: the most messages written in one transaction; more wait for the next
MAX_BATCH = 512


class SendBatcher:
    """Queues messages for many requests at once; each request gets its own message ids back.

    A request's messages are written together, in one batch. If a batch's write fails, each of
    its requests is written again on its own, so that a request never fails because of another
    request's messages: only the requests whose own write fails get an error.
    """

    def __init__(self, queue: Queue, *, max_batch: int = MAX_BATCH) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._pending: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Queue ``messages`` (de-duplicated as by ``Queue.send``); their ids, in order."""
        loop = asyncio.get_running_loop()
        request = _Request(messages, loop.create_future())
        self._pending.append(request)
        if self._writer is None or self._writer.done():
            # the task starts on the loop's next turn: the requests already running by then
            # have added their messages, and are written with these
            self._writer = loop.create_task(self._write())
        return await request.answer

    async def _write(self) -> None:
        try:
            while self._pending:
                batch = self._next_batch()
                try:
                    await self._send(batch)
                except Exception:
                    if len(batch) == 1:
                        continue
                    for request in batch:  # isolate: the culprit alone fails
                        with contextlib.suppress(Exception):
                            await self._send([request])
        except BaseException:  # cancelled: the others are not written either
            for request in self._pending:
                request.answer.cancel()
            self._pending.clear()
            raise

    def _next_batch(self) -> list[_Request]:
        """The oldest requests, whole, up to ``max_batch`` messages (at least one request)."""
        count = 0
        taken = 0
        for request in self._pending:
            if taken and count + len(request.messages) > self._max_batch:
                break
            count += len(request.messages)
            taken += 1
        batch = self._pending[:taken]
        del self._pending[:taken]
        return batch

    async def _send(self, batch: list[_Request]) -> None:
        """Write ``batch`` in one ``send``; each request gets its ids, or all get the error."""
        try:
            ids = await self._queue.send([message for request in batch for message in request.messages])
        except BaseException as exc:
            if len(batch) == 1 or not isinstance(exc, Exception):
                for request in batch:
                    if not request.answer.done():
                        request.answer.set_exception(exc)
            raise
        position = 0
        for request in batch:
            if not request.answer.done():  # a request cancelled while waiting
                request.answer.set_result(ids[position : position + len(request.messages)])
            position += len(request.messages)


@dataclass(frozen=True, slots=True)
class _Request:
    messages: Sequence[OutgoingMessage]
    answer: asyncio.Future[list[str]]
