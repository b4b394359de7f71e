"""A run's trace as a waterfall: the chain from its root (an event, or the source message) to the
last descendant, one row per message, event, run and step, on one time axis.

Runs and events carry their start times. Steps carry only durations, and run one after another,
so a step starts where its previous sibling ended (a nested step, where its parent started). Queue
wait (from the event or message to the run's start) is drawn apart from execution.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowbus.events.instance import EventInstance
from flowbus.queue import QueuedMessage
from flowbus.runtime.records import Run, Trigger
from flowbus.stores.protocols import Backend
from flowbus.trace import (
    DebouncedBurst,
    ScheduledMessage,
    TraceNode,
    UnmatchedMessage,
    trace_event,
    trace_message,
    trace_run,
)

#: the longest chain of parents climbed to find the top run
MAX_CLIMB = 64
#: rows drawn at most (a long foreach makes many steps)
MAX_ROWS = 2000
SCALE = 1000.0


@dataclass
class Row:
    depth: int
    kind: str  # message, event, run, step
    label: str
    status: str
    start: dt.datetime
    duration_s: float
    wait_s: float = 0.0
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    link: str = ""
    selected: bool = False
    #: where the bar sits on the 0..SCALE axis (set once every row is known)
    x: float = 0.0
    width: float = 0.0
    wait_x: float = 0.0
    wait_width: float = 0.0


@dataclass
class Timeline:
    rows: list[Row]
    correlation_id: str | None
    span_s: float
    cut: bool


async def _top(backend: Backend, run: Run) -> Run:
    """The run that started it all: a call's caller, a sync handler's publisher."""
    top = run
    for _ in range(MAX_CLIMB):
        parent = await backend.get_run(top.parent_run_id) if top.parent_run_id else None
        if parent is None:
            break
        top = parent
    return top


async def _roots(backend: Backend, top: Run) -> tuple[str | None, QueuedMessage | None, list[TraceNode]]:
    """The chain's correlation id, its source message (when a message started it) and its trees."""
    event = await backend.get_event(top.event_id) if top.event_id else None
    correlation = event.correlation_id if event is not None else top.message_id
    if correlation is not None:
        root = await backend.get_event(correlation)
        if root is not None:
            return correlation, None, [await trace_event(backend, root)]
        message = await backend.get_message(correlation)
        if message is not None:
            # every run of the message's unit of work carries its id; sync handler runs are drawn
            # inside their publisher, so only the attempts' own runs start a tree
            attempts = [t for t in await trace_message(backend, message.id) if not _parent_of(t)]
            return correlation, message, attempts
    return correlation, None, [await trace_run(backend, top)]


def _parent_of(node: TraceNode) -> str | None:
    return node.record.parent_run_id if isinstance(node.record, Run) else None


async def timeline(backend: Backend, run: Run) -> Timeline:
    correlation, message, trees = await _roots(backend, await _top(backend, run))
    rows: list[Row] = []
    if message is not None:
        body = message.body if isinstance(message.body, Mapping) else {}
        rows.append(Row(0, "message", f"message {body.get('source', '')} {body.get('type', '')}".strip(),
                        str(message.state), message.created_at, 0.0,
                        detail={"data": body.get("data")}, link=f"messages/{message.id}"))  # fmt: skip
    for tree in trees:
        _walk(tree, 1 if message is not None else 0, message.created_at if message else None, None, rows, run.id)
    cut = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    span = _place(rows)
    return Timeline(rows, correlation, span, cut)


def _walk(
    node: TraceNode, depth: int, queued_at: dt.datetime | None, at: dt.datetime | None, rows: list[Row], chosen: str
) -> dt.datetime | None:
    """Add the node's rows; ``queued_at``: when what starts a run was queued; ``at``: a step's
    estimated start. Returns where the next sibling step starts."""
    if len(rows) > MAX_ROWS:
        return at
    record = node.record
    if isinstance(record, EventInstance):
        rows.append(Row(depth, "event", f"event {record.type} v{record.version}", "published", record.time, 0.0,
                        note=f"from {record.source}", detail={"data": record.data},
                        link=f"events/{record.id}"))  # fmt: skip
        for child in node.children:
            _walk(child, depth + 1, record.time, None, rows, chosen)
        return at
    if isinstance(record, Run):
        rows.append(_run_row(record, depth, queued_at, chosen))
        cursor: dt.datetime | None = record.started_at
        for child in node.children:
            cursor = _walk(child, depth + 1, None, cursor, rows, chosen)
        return at
    if isinstance(record, UnmatchedMessage):  # a message that no flow took: said, with no bar
        rows.append(Row(depth, "message", f"message {record.message_id}", "unmatched", at or _now(), 0.0,
                        note=record.describe()))  # fmt: skip
        return at
    if isinstance(record, ScheduledMessage):  # a message that waits: said, with no bar
        rows.append(Row(depth, "message", f"message {record.message_id}", record.state, record.available_at, 0.0,
                        note=record.describe()))  # fmt: skip
        return at
    if isinstance(record, DebouncedBurst):  # what a debounced run ran for: said, with no bar
        rows.append(Row(depth, "message", f"message {record.message_id}", "debounced", at or _now(), 0.0,
                        note=record.describe()))  # fmt: skip
        return at
    start = at or _now()
    rows.append(Row(depth, "step", f"{record.key} ({record.action})", str(record.status), start, record.duration_s,
                    detail={"input": record.input, "output": record.output, "error": record.error}))  # fmt: skip
    cursor = start
    for child in node.children:
        cursor = _walk(child, depth + 1, None, cursor, rows, chosen)
    return start + dt.timedelta(seconds=record.duration_s)


def _run_row(run: Run, depth: int, queued_at: dt.datetime | None, chosen: str) -> Row:
    if run.trigger is Trigger.HANDLER:
        mode = "sync, inside its publisher" if run.parent_run_id else "async"
        label, note = f"handler {run.handler} → flow {run.flow}", mode
    elif run.trigger is Trigger.CALL:
        label, note = f"call flow {run.flow}", ""
    else:
        label, note = f"flow {run.flow}", f"{run.trigger}"
    note = ", ".join(n for n in (note, f"attempt {run.attempt}", f"config v{run.config_version}") if n)
    wait = (run.started_at - queued_at).total_seconds() if queued_at is not None and not run.parent_run_id else 0.0
    return Row(depth, "run", label, str(run.status), run.started_at, run.duration_s, wait_s=max(wait, 0.0), note=note,
               detail={"inputs": run.inputs, "outputs": run.outputs, "error": run.error}, link=f"runs/{run.id}",
               selected=run.id == chosen)  # fmt: skip


def _place(rows: list[Row]) -> float:
    """Set each row's bar on the axis; the span in seconds."""
    if not rows:
        return 0.0
    origin = min(r.start - dt.timedelta(seconds=r.wait_s) for r in rows)
    end = max(r.start + dt.timedelta(seconds=r.duration_s) for r in rows)
    span = max((end - origin).total_seconds(), 1e-6)
    for row in rows:
        offset = (row.start - origin).total_seconds()
        row.x = offset / span * SCALE
        row.width = max(row.duration_s / span * SCALE, 2.0)
        row.wait_x = (offset - row.wait_s) / span * SCALE
        row.wait_width = row.wait_s / span * SCALE
    return span


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
