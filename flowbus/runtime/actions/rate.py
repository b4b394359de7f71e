"""A target's shared rate limit: one turn of a limiter kept in the store per request.

The limiter is GCRA without a burst: it keeps, per project and target, the time its next turn is
free, and spaces the turns ``period / limit`` apart (plus a 100 ms slack over the period, for the
network's jitter: :data:`~flowbus.config.limits.SLACK_S`), so that no window of ``period`` holds
more than ``limit`` of them, even counted at the server, across every worker and process (the
store moves that time in one atomic statement: :meth:`~flowbus.stores.protocols.RateStore.take_rate`).
A request waits for its turn in the step when the turn is at most :data:`MAX_WAIT_S` away; a turn
further away is not taken, and the message is given back to its queue until about then
(``throttled``, no attempt spent). A server's ``Retry-After`` holds the limiter until the time it
asked for, so every caller waits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time

from flowbus.config.model import HttpTarget
from flowbus.errors import Deferred
from flowbus.runtime.changes import RunStore

#: the longest a request waits for its turn in the step, holding its message's lease; a longer
#: wait gives the message back to the queue
MAX_WAIT_S = 5.0


async def take_turn(store: RunStore, target: HttpTarget, *, queued: bool) -> None:
    """Wait for a turn of ``target``'s limiter; when it is more than :data:`MAX_WAIT_S` away and the
    run has a ``queued`` message, raise :class:`Deferred` to give it back until then (spread over
    a little more, so the messages given back together do not all come back at once). A run
    without a message waits however long it takes."""
    rate = target.rate_limit
    if rate is None:
        return
    max_wait_s = MAX_WAIT_S if queued else float("inf")
    now = time.time()
    wait_s = await store.take_rate(target.name, now=now, interval_s=rate.interval_s, max_wait_s=max_wait_s)
    if wait_s > max_wait_s:
        back_s = wait_s + random.uniform(0, min(wait_s, MAX_WAIT_S))
        until = dt.datetime.fromtimestamp(now + back_s, dt.UTC)
        per = f"{rate.limit} per {rate.period.total_seconds():g}s"
        reason = f"throttled: target {target.name} is at its rate limit ({per}); next turn in {wait_s:.1f}s"
        raise Deferred(until, reason, target=target.name)
    if wait_s > 0:
        await asyncio.sleep(wait_s)
