"""Group commit for the ingress: the messages of concurrent requests go to the queue in one
``send``, so one transaction (one commit) serves every request that arrived while the previous
one was being written, instead of one transaction per request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from flowbus.queue import OutgoingMessage
from flowbus.stores.protocols import Queue

#: the most messages written in one transaction; more wait for the next
MAX_BATCH = 512


class SendBatcher:
    """Queues messages for many requests at once; each request gets its own message ids back.

    A request's messages are written together when they fit in one batch. If the write fails,
    every request of that batch gets the error (nothing of the batch was written).
    """

    def __init__(self, queue: Queue, *, max_batch: int = MAX_BATCH) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._pending: list[tuple[OutgoingMessage, asyncio.Future[str]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Queue ``messages`` (de-duplicated as by ``Queue.send``); their ids, in order."""
        loop = asyncio.get_running_loop()
        waiting = [loop.create_future() for _ in messages]
        self._pending.extend(zip(messages, waiting, strict=True))
        if self._writer is None or self._writer.done():
            # the task starts on the loop's next turn: the requests already running by then
            # have added their messages, and are written with these
            self._writer = loop.create_task(self._write())
        return list(await asyncio.gather(*waiting))

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                ids = await self._queue.send([message for message, _ in batch])
            except BaseException as exc:
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
                if not isinstance(exc, Exception):  # cancelled: the others are not written either
                    for _, waiter in self._pending:
                        waiter.cancel()
                    self._pending.clear()
                    raise
                continue
            for (_, waiter), message_id in zip(batch, ids, strict=True):
                if not waiter.done():  # a request cancelled while waiting
                    waiter.set_result(message_id)
