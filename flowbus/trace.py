"""An event's or run's trace as a tree: runs, their steps, the events they published, and the
runs those events caused. Built from the stored records; rendered as text or plain data. A
message no flow took has a node of its own saying so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from flowbus import jsonio
from flowbus.events.instance import EventInstance
from flowbus.queue import DEBOUNCED, SCHEDULED, THROTTLED, WAITING_FOR_SLOT, MessageState, QueuedMessage
from flowbus.runtime.bounds import EXPIRED, RETRIED, is_cut_value
from flowbus.runtime.records import Run, StepRun, StepStatus, Trigger
from flowbus.runtime.routing import Unmatched, unmatched
from flowbus.stores.protocols import Backend

#: nesting beyond this is cut from a trace: two levels for each event of a chain, so 128 events
#: (the default max_chain_depth is 16); the tree is built by recursion, which this also bounds
MAX_TRACE_DEPTH = 256
#: the widest indentation of a rendered trace, in columns (see :func:`render`)
MAX_INDENT = 60


class UnmatchedMessage(NamedTuple):
    """A message that ended ``unmatched``, beside the pairs the active config version routes."""

    message_id: str
    unmatched: Unmatched
    #: the active version whose routes were looked at (None: no version is active)
    config_version: int | None
    #: the flows the active version runs for the message's pair now (it changed since), else empty
    flows_now: tuple[str, ...]

    def describe(self) -> str:
        if self.flows_now:
            found = self.unmatched
            return (
                f"matched no flow when it was processed; version {self.config_version} now routes "
                f"({found.source}, {found.event_type}) to {', '.join(self.flows_now)}"
            )
        return self.unmatched.describe()


class ScheduledMessage(NamedTuple):
    """A message not run yet: delayed until ``available_at``, or waiting out a retry's backoff
    (``scheduled``); held back until ``available_at`` by its rate limit, or given back by a
    target's rate limit or a server's ``Retry-After`` (``throttled``); due, waiting for a slot of
    its concurrency key (``waiting_for_slot``); or holding a debounce burst (``debounced``)."""

    message_id: str
    available_at: dt.datetime
    #: attempts already made (0: it was delayed when sent)
    attempts: int
    #: its state as shown: scheduled, throttled, waiting_for_slot or debounced
    state: str = SCHEDULED
    #: the concurrency key it waits on (waiting_for_slot)
    key: str | None = None
    #: the events its debounce burst holds so far (0: not debounced)
    debounced: int = 0
    #: throttled by a target: given back by its rate limit or a server's ``Retry-After``
    deferred: bool = False

    def describe(self) -> str:
        if self.state == DEBOUNCED:
            return (
                f"debounced: holds the last of {self.debounced} event(s) so far; runs at "
                f"{self.available_at.isoformat()} unless another event of its key comes first"
            )
        if self.state == THROTTLED and not self.deferred:
            return f"throttled by its rate limit: admitted at {self.available_at.isoformat()} at the earliest"
        if self.state == WAITING_FOR_SLOT:
            return f"waiting for a slot: every slot of its concurrency key {self.key!r} is taken"
        if self.state == THROTTLED:
            why = "throttled (a target's rate limit or the server's Retry-After; no attempt spent)"
        else:
            why = f"retried after {self.attempts} failed attempt(s)" if self.attempts else "delayed"
        return f"{why}: invisible to workers until {self.available_at.isoformat()}"


class DebouncedBurst(NamedTuple):
    """What a debounced handler's run ran for: the last event of a burst (the others were folded
    into its message, and are kept as event instances of their own)."""

    message_id: str
    #: the events of the burst, the one run for included
    events: int
    key: str

    def describe(self) -> str:
        others = self.events - 1
        return (
            f"ran for the last event of a burst of {self.events} (key {self.key!r}); "
            f"the {others} before it were debounced into message {self.message_id}"
        )


Record = Run | StepRun | EventInstance | UnmatchedMessage | ScheduledMessage | DebouncedBurst


@dataclass(frozen=True, kw_only=True)
class TraceNode:
    #: "run", "step", "cut" (step runs cut from the trace), "event", "unmatched", "scheduled", "throttled",
    #: "waiting_for_slot", "debounced" (a message holding a debounce burst), "burst" (the burst a run ran for)
    kind: str
    record: Record
    children: tuple[TraceNode, ...] = field(default=())


async def trace_run(source: Backend, run: Run, *, depth: int = 0) -> TraceNode:
    children = _nest([await _step_node(source, step, depth) for step in run.steps])
    burst = await _burst(source, run)
    if burst is not None:
        children.insert(0, TraceNode(kind="burst", record=burst))
    if depth < MAX_TRACE_DEPTH:
        for child in await source.child_runs(run.id):
            if child.trigger is Trigger.CALL or await _rolled_back_handler(source, child):
                children.append(await trace_run(source, child, depth=depth + 1))
    return TraceNode(kind="run", record=run, children=tuple(children))


async def _burst(source: Backend, run: Run) -> DebouncedBurst | None:
    """The debounce burst an async handler's run ran for, when its message folded more than one
    event (read from the message, which keeps the count)."""
    if run.trigger is not Trigger.HANDLER or run.message_id is None or run.parent_run_id is not None:
        return None
    message = await source.get_message(run.message_id)
    if message is None or message.debounce_key is None or message.debounced < 2:
        return None
    return DebouncedBurst(message.id, message.debounced, message.debounce_key)


async def _rolled_back_handler(source: Backend, run: Run) -> bool:
    """A sync handler run whose event was rolled back: shown under the run that published it."""
    return run.trigger is Trigger.HANDLER and run.event_id is not None and await source.get_event(run.event_id) is None


async def _step_node(source: Backend, step: StepRun, depth: int) -> TraceNode:
    if step.status is StepStatus.CUT:
        return TraceNode(kind="cut", record=step)
    output = step.output
    event_id = output.get("event_id") if step.action == "publish" and isinstance(output, Mapping) else None
    if event_id is None or depth >= MAX_TRACE_DEPTH:
        return TraceNode(kind="step", record=step)
    instance = await source.get_event(event_id)
    if instance is None:
        return TraceNode(kind="step", record=step)
    return TraceNode(kind="step", record=step, children=(await trace_event(source, instance, depth=depth + 1),))


def _nest(nodes: list[TraceNode]) -> list[TraceNode]:
    """Put nested step runs under the step that ran them.

    The journal records a step when it ends, so a block's steps come just before the
    ``foreach``/``if``/``switch`` step that ran them: a stack adopts them in one pass.
    """
    stack: list[TraceNode] = []
    for node in nodes:
        key = node.record.key  # type: ignore[union-attr]
        adopted: list[TraceNode] = []
        while stack and stack[-1].record.key.startswith((f"{key}.", f"{key}[")):  # type: ignore[union-attr]
            adopted.append(stack.pop())
        if adopted:
            stack.append(TraceNode(kind=node.kind, record=node.record, children=(*node.children, *reversed(adopted))))
        else:
            stack.append(node)
    return stack


async def trace_event(source: Backend, instance: EventInstance, *, depth: int = 0) -> TraceNode:
    runs = [await trace_run(source, run, depth=depth + 1) for run in await source.runs_for_event(instance.id)]
    return TraceNode(kind="event", record=instance, children=tuple(runs))


async def trace_chain(source: Backend, instance: EventInstance) -> TraceNode:
    """The trace of the whole chain ``instance`` belongs to, from its root event (or from
    ``instance`` itself when the root is a message, not an event)."""
    root = await source.get_event(instance.correlation_id) or instance
    return await trace_event(source, root)


#: the states of a message that waits, each a node of its own in its trace
_WAITING = (SCHEDULED, THROTTLED, WAITING_FOR_SLOT, DEBOUNCED)


async def trace_message(source: Backend, message_id: str) -> list[TraceNode]:
    """The runs of a queued or handled message (every attempt), each as a tree; for a message that
    ended unmatched, then a node saying so, and for one that waits (``scheduled``, ``throttled``,
    ``waiting_for_slot``) a node saying why and until when."""
    trees = [await trace_run(source, run) for run in await source.runs_for_message(message_id)]
    message = await source.get_message(message_id)
    if message is not None and message.state is MessageState.UNMATCHED:
        trees.append(await _unmatched_node(source, message))
    elif message is not None and (shown := message.shown_state(dt.datetime.now(dt.UTC))) in _WAITING:
        record = ScheduledMessage(
            message.id, message.available_at, message.attempts, shown, message.concurrency_key,
            debounced=message.debounced if shown == DEBOUNCED else 0, deferred=message.throttled,
        )  # fmt: skip
        trees.append(TraceNode(kind=shown, record=record))
    return trees


async def _unmatched_node(source: Backend, message: QueuedMessage) -> TraceNode:
    """The nearest pairs come from the active version's manifest: the one a redelivery would meet."""
    manifest = await source.manifest()
    routes = manifest.routes if manifest is not None else {}
    pair = (message.body["source"], message.body["type"])
    record = UnmatchedMessage(
        message_id=message.id,
        unmatched=unmatched([p for p in routes if p != pair], *pair),
        config_version=manifest.version if manifest is not None else None,
        flows_now=tuple(routes.get(pair, ())),
    )
    return TraceNode(kind="unmatched", record=record)


def run_summary(run: Run) -> dict[str, Any]:
    """A run without its steps: a trace node's own fields, and an item of the API's run list."""
    return {
        "id": run.id, "flow": run.flow, "trigger": run.trigger, "handler": run.handler,
        "status": run.status, "error": run.error, "started_at": run.started_at,
        "duration_ms": round(run.duration_s * 1000, 3), "inputs": run.inputs, "outputs": run.outputs,
        "event_id": run.event_id, "message_id": run.message_id, "parent_run_id": run.parent_run_id,
        "config_version": run.config_version, "attempt": run.attempt, "steps_cut": run.steps_cut,
    }  # fmt: skip


def to_data(node: TraceNode) -> dict[str, Any]:
    """The tree as plain data, for ``--json`` output and the API.

    Built with a stack, not recursion: the tree of a long event chain is deeper than recursion
    may go (and :func:`flowbus.jsonio.dumps` writes any depth)."""
    root = _fields(node)
    stack = [(node, root)]
    while stack:
        current, data = stack.pop()
        children = [_fields(child) for child in current.children]
        data["children"] = children
        stack.extend(zip(current.children, children, strict=True))
    return root


def _fields(node: TraceNode) -> dict[str, Any]:
    record = node.record
    if isinstance(record, Run):
        return {"kind": "run", **run_summary(record)}
    if isinstance(record, StepRun) and record.status is StepStatus.CUT:
        cut = record.output
        return {
            "kind": "cut",
            "key": record.key,
            "count": cut["count"],
            "reason": cut["reason"],
            "note": _cut_note(record),
        }
    if isinstance(record, StepRun):
        return {
            "kind": "step", "key": record.key, "id": record.step_id, "action": record.action, "status": record.status,
            "input": record.input, "output": record.output, "error": record.error,
            "duration_ms": round(record.duration_s * 1000, 3),
        }  # fmt: skip
    if isinstance(record, UnmatchedMessage):
        found = record.unmatched
        return {
            "kind": "unmatched", "message_id": record.message_id, "source": found.source,
            "event_type": found.event_type, "nearest": [list(pair) for pair in found.nearest],
            "config_version": record.config_version, "flows_now": list(record.flows_now),
            "note": record.describe(),
        }  # fmt: skip
    if isinstance(record, ScheduledMessage):
        return {
            "kind": record.state, "message_id": record.message_id, "available_at": record.available_at,
            "attempts": record.attempts, "debounced": record.debounced, "note": record.describe(),
        }  # fmt: skip
    if isinstance(record, DebouncedBurst):
        return {
            "kind": "burst", "message_id": record.message_id, "events": record.events, "key": record.key,
            "note": record.describe(),
        }  # fmt: skip
    return {"kind": "event", **record.to_dict()}


def render(node: TraceNode, *, width: int = 100) -> str:
    """The tree as indented text, one line per node (plus step input/output lines); each node
    once, so a chain of N events takes lines in proportion to N.

    Each event of a chain nests four levels deeper; past ``MAX_INDENT`` columns a subtree goes on
    at the left margin (after a line ``…``, its root marked ``↳``), so lines stay short too."""
    lines: list[str] = []
    stack = [(node, "", "")]
    while stack:
        current, first, rest = stack.pop()
        if len(rest) > MAX_INDENT:
            lines.append(f"{first}…")
            first, rest = "↳ ", "  "
        lines.extend(_lines(current.record, first, rest, width))
        last = len(current.children) - 1
        for index, child in reversed(list(enumerate(current.children))):
            branch, under = ("└─ ", "   ") if index == last else ("├─ ", "│  ")
            stack.append((child, rest + branch, rest + under))
    return "\n".join(lines)


def _lines(record: Record, first: str, rest: str, width: int) -> list[str]:
    if isinstance(record, Run):
        who = f"handler {record.handler} -> " if record.handler else ""
        error = f": {record.error}" if record.error else ""
        return [f"{first}{who}run {record.flow} [{record.status.value}] {_ms(record.duration_s)}{error}"]
    if isinstance(record, StepRun) and record.status is StepStatus.CUT:
        return [f"{first}… {_cut_note(record)}"]
    if isinstance(record, StepRun):
        error = f": {record.error}" if record.error else ""
        lines = [f"{first}step {record.key} ({record.action}) [{record.status.value}] {_ms(record.duration_s)}{error}"]
        if record.input not in (None, {}):
            lines.append(f"{rest}    in:  {_short(record.input, width)}")
        if record.output is not None and record.status.value == "succeeded":
            lines.append(f"{rest}    out: {_short(record.output, width)}")
        return lines
    if isinstance(record, UnmatchedMessage):
        return [f"{first}message {record.message_id} [unmatched]: {record.describe()}"]
    if isinstance(record, ScheduledMessage):
        return [f"{first}message {record.message_id} [{record.state}]: {record.describe()}"]
    if isinstance(record, DebouncedBurst):
        return [f"{first}{record.describe()}"]
    return [
        f"{first}event {record.type} v{record.version} {record.id} (depth {record.depth})",
        f"{rest}    data: {_short(record.data, width)}",
    ]


def _cut_note(marker: StepRun) -> str:
    count = marker.output["count"]
    if marker.output["reason"] == RETRIED:
        why = "an attempt that was retried keeps only its failing steps"
    elif marker.output["reason"] == EXPIRED:
        why = "the step detail has expired (the project's retention of steps)"
    else:
        why = "a trace keeps the first tenth of max_trace_steps step runs and the rest from the end"
    return f"{count:,} step run{'s' if count != 1 else ''} cut here: {why}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _short(value: Any, width: int) -> str:
    if is_cut_value(value):
        text = f"(cut: {value['bytes']:,} bytes of JSON) {value['head']}"
        return text[: width - 1] + "…"
    try:
        text = jsonio.dumps(value)
    except jsonio.JsonError:
        text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"
