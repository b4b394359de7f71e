"""Requests being answered in this process, so that a worker sharing its event loop gives way to them.

In ``flowbus run`` the HTTP API and a worker share one event loop. On SQLite every store call of
the worker runs without suspending, so each of its slices (a claim, a few runs, a batch's commit)
holds the loop, and a request needs several turns of the loop to be answered: with the worker
draining a backlog, a request waited behind one slice per turn. So the worker, before each slice,
waits while requests are in hand, and the API answers them first.

It waits no longer than its last slice ran: a request that never ends (a client sending its body
slowly) can slow the worker to half its pace, never stop it.
"""

from __future__ import annotations

import asyncio
import contextlib


class Foreground:
    """A count of the requests in hand, and a wait for it to fall to zero."""

    def __init__(self) -> None:
        self.in_hand = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.in_hand += 1
        self._idle.clear()

    def finished(self) -> None:
        self.in_hand -= 1
        if not self.in_hand:
            self._idle.set()

    async def give_way(self, at_most_s: float) -> None:
        """Return once no request is in hand, or after ``at_most_s``; at least one turn of the loop."""
        if not self.in_hand:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), at_most_s)
