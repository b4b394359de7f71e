"""The overview: the last hour's throughput, failure rate and latency, queue depth and age, and
dead letters, from queries whose cost does not grow with the history (see Backend.run_points and
Backend.queue_stats)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response

from flowbus.api.dashboard import charts
from flowbus.api.dashboard.access import page
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session
from flowbus.api.state import ApiState
from flowbus.ids import time_of
from flowbus.queue import MessageState, QueueName
from flowbus.runtime.records import RunStatus
from flowbus.stores.protocols import QueueStat, RunPoint

WINDOW = dt.timedelta(hours=1)
SLOTS = 60
#: the most runs the overview reads: past it, the numbers are those of the newest runs, and say so
MAX_POINTS = 20_000


class RunStats(NamedTuple):
    runs: int
    per_second: float
    failure_rate: float | None
    p50_s: float | None
    p95_s: float | None
    #: the window the numbers cover (shorter than an hour when MAX_POINTS cut it)
    covered: dt.timedelta
    sampled: bool


class QueueRow(NamedTuple):
    queue: QueueName
    ready: int
    leased: int
    dead: int
    oldest_age_s: float | None


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ascending values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def run_stats(points: Sequence[RunPoint], now: dt.datetime, *, sampled: bool) -> RunStats:
    covered = now - time_of(points[-1].id) if sampled and points else WINDOW
    seconds = max(covered.total_seconds(), 1.0)
    durations = sorted(p.duration_s for p in points)
    failed = sum(1 for p in points if p.status is RunStatus.FAILED)
    return RunStats(
        runs=len(points),
        per_second=len(points) / seconds,
        failure_rate=failed / len(points) if points else None,
        p50_s=percentile(durations, 0.5),
        p95_s=percentile(durations, 0.95),
        covered=covered,
        sampled=sampled,
    )


def per_minute(points: Sequence[RunPoint], now: dt.datetime) -> dict[str, object]:
    """Runs per minute (succeeded, failed, rejected stacked) and the p95 latency of each minute."""
    start = now - WINDOW
    slots: list[list[RunPoint]] = [[] for _ in range(SLOTS)]
    for point in points:
        index = int((time_of(point.id) - start) / (WINDOW / SLOTS))
        if 0 <= index < SLOTS:
            slots[index].append(point)
    labels = [(start + WINDOW / SLOTS * i).strftime("%H:%M UTC") for i in range(SLOTS)]
    series = [
        (str(status), [float(sum(1 for p in slot if p.status is status)) for slot in slots]) for status in RunStatus
    ]
    p95 = [percentile(sorted(p.duration_s for p in slot), 0.95) for slot in slots]
    return {"bars": charts.stacked_bars(series, labels), "p95_ticks": charts.ticks(p95, labels, "ms p95"),
            "width": charts.WIDTH, "height": charts.HEIGHT}  # fmt: skip


def queue_rows(stats: Sequence[QueueStat], now: dt.datetime) -> list[QueueRow]:
    rows = []
    for queue in QueueName:
        mine = {s.state: s for s in stats if s.queue is queue}
        open_ = [s.oldest for state, s in mine.items() if state is not MessageState.DEAD]
        count = {state: s.messages for state, s in mine.items()}
        rows.append(
            QueueRow(
                queue,
                count.get(MessageState.READY, 0),
                count.get(MessageState.LEASED, 0),
                count.get(MessageState.DEAD, 0),
                (now - min(open_)).total_seconds() if open_ else None,
            )
        )
    return rows


@page
async def overview(request: Request, session: Session) -> Response:
    state: ApiState = request.app.state.flowbus
    backend = state.backend(session.project)
    now = dt.datetime.now(dt.UTC)
    points = await backend.run_points(now - WINDOW, limit=MAX_POINTS)
    queues = queue_rows(await backend.queue_stats(), now)
    return html(
        request,
        "overview.html",
        session,
        nav="overview",
        stats=run_stats(points, now, sampled=len(points) >= MAX_POINTS),
        chart=per_minute(points, now),
        queues=queues,
        dead=sum(q.dead for q in queues),
        version=await backend.active_version(),
    )
