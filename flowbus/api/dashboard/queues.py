"""Queues: depth and oldest age per queue and per FIFO group; blocked groups first, each with the
dead message blocking it."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from flowbus.api.dashboard.access import page
from flowbus.api.dashboard.overview import queue_rows
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session
from flowbus.queue import QueuedMessage
from flowbus.stores.protocols import Backend

#: groups listed at most (blocked ones first, then the oldest)
MAX_GROUPS = 200


@page
async def queues_page(request: Request, session: Session) -> Response:
    backend: Backend = request.app.state.flowbus.backend(session.project)
    now = dt.datetime.now(dt.UTC)
    groups = await backend.group_stats(limit=MAX_GROUPS)
    blockers: dict[str, QueuedMessage] = {}
    for group in groups:
        if group.blocked_by is not None and group.blocked_by not in blockers:
            found = await backend.get_message(group.blocked_by)
            if found is not None:
                blockers[found.id] = found
    return html(request, "queues.html", session, nav="queues", queues=queue_rows(await backend.queue_stats(), now),
                groups=groups, blockers=blockers, now=now, max_groups=MAX_GROUPS)  # fmt: skip
