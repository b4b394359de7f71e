"""Cross-reference validation: every name a config uses resolves, and the wiring makes sense.

All issues are collected (not just the first), each pinned to the field it is about.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flowbus.config.debounce import Debounce
from flowbus.config.document import Document, FieldPath
from flowbus.config.event_versions import EventVersions
from flowbus.config.issues import Issue
from flowbus.config.model import (
    Config,
    EventDefinition,
    Flow,
    FlowInput,
    HttpTarget,
    Property,
    StoreTarget,
)
from flowbus.config.schedules import Schedule
from flowbus.config.steps import BaseStep, OutputStep, Refers
from flowbus.events.types import assignable

#: the built-in entity store; always there, whether or not `targets` names it
DEFAULT_TARGET = "store"


def walk_steps(steps: Iterable[BaseStep], where: FieldPath) -> Iterator[tuple[BaseStep, FieldPath]]:
    """Every step of a step list, nested ones included, with its field path."""
    for index, step in enumerate(steps):
        path = (*where, index)
        yield step, path
        for block_path, block in step.blocks():
            yield from walk_steps(block, (*path, *block_path))


def reference(step: BaseStep) -> tuple[Refers, str] | None:
    """What ``step`` refers to, as its model declares it, and the name it gives; None when nothing."""
    refers = type(step).spec.refers
    if refers is None:
        return None
    name: str = getattr(step, refers.field)
    return refers, name


def _version(step: BaseStep, refers: Refers) -> int | None:
    version: int | None = getattr(step, refers.version) if refers.version is not None else None
    return version


class ReferenceChecker:
    def __init__(self, config: Config, document: Document) -> None:
        self.config = config
        self.document = document
        self.issues: list[Issue] = []
        self.versions = EventVersions(config.events)
        #: name -> its latest version: what names resolve against
        self.events = self.versions.latest
        self.flows = {f.name: f for f in config.flows}
        self.sources = {s.name: s for s in config.sources}
        self.targets = {t.name: t for t in config.targets}

    def error(self, path: FieldPath, message: str) -> None:
        self.issues.append(Issue.error(self.document.location(path), message))

    def warning(self, path: FieldPath, message: str) -> None:
        self.issues.append(Issue.warning(self.document.location(path), message))

    def check(self) -> list[Issue]:
        c = self.config
        self._unique("sources", [s.name for s in c.sources], "source")
        self._unique_events()
        self._unique("flows", [f.name for f in c.flows], "flow")
        self._unique("handlers", [h.name for h in c.handlers], "handler")
        self._unique("targets", [t.name for t in c.targets], "target")
        self._unique("schedules", [s.name for s in c.schedules], "schedule")
        if isinstance(self.targets.get(DEFAULT_TARGET), HttpTarget):
            index = [t.name for t in c.targets].index(DEFAULT_TARGET)
            self.error(
                ("targets", index, "type"),
                f"the name {DEFAULT_TARGET!r} is the built-in entity store; it must have type store",
            )
        for index, flow in enumerate(c.flows):
            self._flow(flow, ("flows", index))
        self._event_type_paths()
        for index in range(len(c.handlers)):
            self._handler(index)
        for index, schedule in enumerate(c.schedules):
            self._schedule(schedule, ("schedules", index))
        self._cycles()
        self._unreachable()
        return self.issues

    # -- names ---------------------------------------------------------------------------

    def _unique(self, section: str, names: list[str], kind: str) -> None:
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in seen:
                line = self.document.line_of((section, seen[name]))
                self.error(
                    (section, index, "name"),
                    f"{kind} names must be unique: {name!r} is already defined at line {line}",
                )
            else:
                seen[name] = index

    def _unique_events(self) -> None:
        """An event is its name and version: versions of one name sit side by side, a pair is defined once."""
        seen: dict[tuple[str, int], int] = {}
        for index, event in enumerate(self.config.events):
            first = seen.setdefault((event.name, event.version), index)
            if first == index:
                continue
            line = self.document.line_of(("events", first))
            if self.versions.several(event.name):
                message = f"event versions must be unique: {event.name!r} version {event.version} is already defined"
            else:
                message = f"event names must be unique: {event.name!r} is already defined"
            self.error(("events", index, "name"), f"{message} at line {line}")

    def _event_version(self, path: FieldPath, name: str, version: int | None) -> EventDefinition | None:
        """The definition ``name`` (already resolved) at ``version`` (default: the latest), or an error at ``path``."""
        event = self.versions.resolve(name, version)
        if event is None and version is not None:
            self.error(path, self.versions.missing_version(name, version))
        return event

    def _resolve(
        self, path: FieldPath, kind: str, name: str, names: Mapping[str, Any], *, owner: str | None = None
    ) -> bool:
        if name in names:
            return True
        near = difflib.get_close_matches(name, list(names), n=3)
        if near:
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?"
        elif names:
            hint = f"; defined: {', '.join(sorted(names)[:10])}"
        else:
            hint = f"; the config defines no {kind}s"
        subject = f"{owner} has no {kind} named {name!r}" if owner else f"no {kind} named {name!r}"
        self.error(path, f"{subject}{hint}")
        return False

    # -- flows ---------------------------------------------------------------------------

    def _flow(self, flow: Flow, where: FieldPath) -> None:
        if flow.is_trigger:
            if flow.source is None or flow.event_type is None:
                missing = "source" if flow.source is None else "event_type"
                self.error(
                    (*where, missing),
                    f"a trigger flow needs both `source` and `event_type`; {missing} is missing",
                )
            if flow.inputs:
                self.error(
                    (*where, "inputs"),
                    "a trigger flow takes its data from the message; `inputs` belong to logic flows",
                )
            # without any declared source, a flow's source is declared by using it (the minimal form)
            if flow.source is not None and self.sources:
                self._resolve((*where, "source"), "source", flow.source, self.sources)
            if flow.debounce is not None:
                self.error(
                    (*where, "debounce"),
                    "debounce applies to flows run by async handlers: a trigger flow runs for every "
                    "source message (debounce the handlers of the event it publishes instead)",
                )
        elif flow.event_type_from is not None:
            self.error(
                (*where, "event_type_from"),
                "`event_type_from` applies only to trigger flows (with source and event_type)",
            )
        if not flow.is_trigger and flow.debounce is not None:
            self._debounce_within_retention(flow.debounce, (*where, "debounce"))
        seen: dict[str, FieldPath] = {}
        for step, path in walk_steps(flow.steps, (*where, "steps")):
            if step.id in seen:
                line = self.document.line_of(seen[step.id])
                self.error(
                    (*path, "id"),
                    "step ids within a flow must be unique: "
                    f"flow {flow.name!r} uses id {step.id!r} again (first at line {line})",
                )
            else:
                seen[step.id] = path
            self._step(step, path)

    def _step(self, step: BaseStep, path: FieldPath) -> None:
        # what a step refers to is declared on its model (`refers`): one check per kind of thing named
        found = reference(step)
        if found is None:
            return
        refers, name = found
        where = (*path, refers.field)
        given: Mapping[str, Any] = getattr(step, refers.given) if refers.given is not None else {}
        if refers.kind in {"store", "http"}:
            self._target(step.action, refers.kind, name, where)
        elif refers.kind == "event":
            if not self._resolve(where, "event", name, self.events):
                return
            event = self._event_version((*path, refers.version or refers.field), name, _version(step, refers))
            if event is not None and refers.given is not None:
                owner = f"event {self.versions.label(event)!r}"
                self._given(path, refers.given, given, event.properties, owner, "property")
        elif self._resolve(where, "flow", name, self.flows):
            called = self.flows[name]
            if called.is_trigger:
                self.error(where, f"flow {name!r} is a trigger flow; only logic flows can be called")
            elif refers.given is not None:
                self._given(path, refers.given, given, called.inputs, f"flow {name!r}", "input")

    def _schedule(self, schedule: Schedule, where: FieldPath) -> None:
        """What a tick publishes or runs resolves, with its properties or inputs, as for a step."""
        if schedule.publish is not None:
            publish, path = schedule.publish, (*where, "publish")
            if self._resolve((*path, "event"), "event", publish.event, self.events):
                event = self._event_version((*path, "event_version"), publish.event, publish.event_version)
                if event is not None:
                    owner = f"event {self.versions.label(event)!r}"
                    self._given(path, "properties", publish.properties, event.properties, owner, "property")
        elif schedule.run is not None and self._resolve((*where, "run"), "flow", schedule.run, self.flows):
            flow = self.flows[schedule.run]
            if flow.is_trigger:
                self.error((*where, "run"), f"flow {flow.name!r} is a trigger flow; a schedule runs logic flows")
            else:
                self._given(where, "inputs", schedule.inputs, flow.inputs, f"flow {flow.name!r}", "input")

    def _target(self, action: str, kind: str, name: str, where: FieldPath) -> None:
        target = self.targets.get(name)
        # the built-in store is always there, and without any declared target every store name is
        if kind == "store" and (name == DEFAULT_TARGET or (target is None and not self.targets)):
            return
        if not self._resolve(where, "target", name, self.targets):
            return
        if kind == "store" and not isinstance(target, StoreTarget):
            self.error(where, f"{action} needs a target of type store; {name!r} is an http target")
        elif kind == "http" and not isinstance(target, HttpTarget):
            self.error(where, f"{action} needs a target of type http; {name!r} is a store target")

    def _given(
        self,
        path: FieldPath,
        field: str,
        given: Mapping[str, Any],
        declared: Mapping[str, Property],
        owner: str,
        noun: str,
    ) -> None:
        for name in given:
            if name not in declared:
                near = difflib.get_close_matches(name, list(declared), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; it has: {', '.join(declared) or 'none'}"
                self.error((*path, field, name), f"{owner} has no {noun} {name!r}{hint}")
        missing = [n for n, p in declared.items() if p.needs_value and n not in given]
        if missing:
            self.error(
                (*path, field),
                f"{owner} requires {', '.join(repr(m) for m in missing)}, "
                f"which {'is' if len(missing) == 1 else 'are'} not given",
            )

    def _event_type_paths(self) -> None:
        declared: dict[str, tuple[str, FieldPath]] = {
            s.name: (s.event_type_from, ("sources", i, "event_type_from"))
            for i, s in enumerate(self.config.sources)
            if s.event_type_from is not None
        }
        for index, flow in enumerate(self.config.flows):
            if flow.source is None or flow.event_type_from is None:
                continue
            path: FieldPath = ("flows", index, "event_type_from")
            previous = declared.setdefault(flow.source, (flow.event_type_from, path))
            if previous[0] != flow.event_type_from:
                line = self.document.line_of(previous[1])
                self.error(
                    path,
                    f"source {flow.source!r} already takes its event type from {previous[0]!r} (line {line}); "
                    "one source has one event_type_from",
                )

    # -- handlers ------------------------------------------------------------------------

    def _handler(self, index: int) -> None:
        handler = self.config.handlers[index]
        where: FieldPath = ("handlers", index)
        event_ok = self._resolve((*where, "event"), "event", handler.event, self.events)
        flow_ok = self._resolve((*where, "flow"), "flow", handler.flow, self.flows)
        if not flow_ok:
            return
        flow = self.flows[handler.flow]
        if flow.is_trigger:
            self.error(
                (*where, "flow"),
                f"flow {flow.name!r} is a trigger flow; a handler runs a logic flow (one with inputs, no source)",
            )
            return
        if handler.mode == "sync" and (handler.debounce or flow.debounce) is not None:
            own = handler.debounce is not None
            self.error(
                (*where, "debounce" if own else "mode"),
                ("a sync handler" if own else f"flow {flow.name!r} has a debounce, and a sync handler of it")
                + " runs inside its publisher's transaction and cannot wait for a burst to end; "
                "make the handler async",
            )
        debounce = handler.debounce or flow.debounce
        limited = [
            name
            for name, value in (
                ("concurrency", handler.concurrency or flow.concurrency),
                ("rate_limit", handler.rate_limit or flow.rate_limit),
            )
            if value is not None
        ]
        if debounce is not None and limited:
            # a burst's message is folded in place by its own statement, which keeps no flow control
            self.error(
                (*where, "debounce" if handler.debounce is not None else limited[0]),
                f"a debounced handler takes no {' or '.join(limited)} (it runs once a burst already); "
                "debounce it, or limit it, not both",
            )
        if handler.debounce is not None:
            self._debounce_within_retention(handler.debounce, (*where, "debounce"))
        event = None
        if event_ok:
            event = self._event_version((*where, "event_version"), handler.event, handler.event_version)
        bound = set()
        for prop_name, input_name in handler.bindings.items():
            path = (*where, "bindings", prop_name)
            prop = event.properties.get(prop_name) if event is not None else None
            if event is not None and prop is None:
                owner = f"event {self.versions.label(event)!r}"
                self._resolve(path, "property", prop_name, event.properties, owner=owner)
            target = flow.inputs.get(input_name)
            if target is None:
                self._resolve(path, "input", input_name, flow.inputs, owner=f"flow {flow.name!r}")
                continue
            if input_name in bound:
                self.error(path, f"flow input {input_name!r} is bound twice")
            bound.add(input_name)
            if prop is not None:
                self._compatible(path, event, prop_name, prop, flow, input_name, target)
        for input_name, spec in flow.inputs.items():
            if spec.needs_value and input_name not in bound:
                same = event is not None and input_name in event.properties
                hint = (
                    f" (event {handler.event!r} has a property of that name: bind it with `{input_name}: {input_name}`)"
                    if same
                    else ""
                )
                self.error(
                    (*where, "bindings"),
                    f"required input {input_name!r} of flow {flow.name!r} is not bound{hint}",
                )

    def _debounce_within_retention(self, debounce: Debounce, where: FieldPath) -> None:
        """A burst runs for its last event, which must still be kept when the burst is due: its
        ``period`` and ``max_wait`` must be shorter than ``retention.events``."""
        kept = self.config.retention.events
        for field, span in (("period", debounce.period), ("max_wait", debounce.max_wait)):
            if span is not None and span >= kept:
                self.error(
                    (*where, field),
                    f"`{field}` ({_span(span)}) is not shorter than `retention.events` ({_span(kept)}): "
                    "the event a waiting burst runs for could be removed before its run; "
                    f"give a shorter {field} or keep events longer",
                )
                return  # max_wait is at least the period: one error says it

    def _compatible(
        self,
        path: FieldPath,
        event: EventDefinition | None,
        prop_name: str,
        prop: Property,
        flow: Flow,
        input_name: str,
        target: FlowInput,
    ) -> None:
        if not assignable(prop.type, target.type):
            self.error(
                path,
                f"property {prop_name!r} is {prop.type} "
                f"but input {input_name!r} of flow {flow.name!r} is {target.type}",
            )
        elif prop.entity and target.entity and prop.entity != target.entity:
            self.error(
                path,
                f"property {prop_name!r} refers to {prop.entity} but input {input_name!r} refers to {target.entity}",
            )
        elif target.needs_value and not prop.required and event is not None:
            self.warning(
                path,
                f"optional property {prop_name!r} is bound to required input {input_name!r}: "
                "the run fails when the event lacks it",
            )

    # -- cycles --------------------------------------------------------------------------

    def _cycles(self) -> None:
        """A cycle of sync edges (call, sync handler) never ends: error. One with an async edge: warning."""
        edges: dict[str, list[tuple[str, bool]]] = {f.name: [] for f in self.config.flows}
        # a publish reaches the handlers of the version it publishes only
        handlers_of: dict[tuple[str, int], list[tuple[str, bool]]] = {}
        for handler in self.config.handlers:
            event = self.versions.resolve(handler.event, handler.event_version)
            if event is not None:
                key = (event.name, event.version)
                handlers_of.setdefault(key, []).append((handler.flow, handler.mode == "sync"))
        for flow in self.config.flows:
            for step, _ in walk_steps(flow.steps, ()):
                if (found := reference(step)) is None:
                    continue
                refers, name = found
                if refers.kind == "flow" and name in self.flows and not self.flows[name].is_trigger:
                    edges[flow.name].append((name, True))
                elif refers.kind == "event" and (published := self.versions.resolve(name, _version(step, refers))):
                    reached = handlers_of.get((published.name, published.version), [])
                    edges[flow.name].extend((t, s) for t, s in reached if t in self.flows)
        index = {f.name: i for i, f in enumerate(self.config.flows)}
        sync_cycle = _find_cycle(edges, lambda is_sync: is_sync)
        if sync_cycle:
            self.error(
                ("flows", index[sync_cycle[0]]),
                f"sync cycle: {' -> '.join(sync_cycle)}; it would never end (make a handler async or break the chain)",
            )
            return
        any_cycle = _find_cycle(edges, lambda _is_sync: True)
        if any_cycle:
            self.warning(
                ("flows", index[any_cycle[0]]),
                f"async cycle: {' -> '.join(any_cycle)}; it runs until the event chain depth limit stops it",
            )

    # -- reachability --------------------------------------------------------------------

    def _unreachable(self) -> None:
        """A flow nothing in the config runs, and that gives no outputs to a Python caller, never runs."""
        reached = {h.flow for h in self.config.handlers} | {s.run for s in self.config.schedules if s.run}
        for flow in self.config.flows:
            for step, _ in walk_steps(flow.steps, ()):
                if (found := reference(step)) is not None and found[0].kind == "flow":
                    reached.add(found[1])
        for index, flow in enumerate(self.config.flows):
            if flow.is_trigger or flow.name in reached:
                continue
            # a logic flow with outputs is taken to be run by Engine.run_flow, which returns them
            if any(isinstance(step, OutputStep) for step, _ in walk_steps(flow.steps, ())):
                continue
            self.warning(
                ("flows", index, "name"),
                f"flow {flow.name!r} never runs: it has no `source`/`event_type`, no handler runs it "
                "and no `call` step or schedule runs it (a flow run from Python by Engine.run_flow gives its result "
                "with an `output` step)",
            )


def _span(value: dt.timedelta) -> str:
    """A duration in its largest whole unit: ``10m``, ``36h``, ``90s``, ``500ms``."""
    ms = round(value.total_seconds() * 1000)
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _find_cycle(edges: Mapping[str, list[tuple[str, bool]]], keep: Callable[[bool], bool]) -> list[str] | None:
    """A cycle of flow names (first repeated at the end), following only edges ``keep`` accepts."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if state.get(start):
            continue
        path: list[str] = [start]
        iters = [iter(edges[start])]
        state[start] = 1
        while iters:
            for target, is_sync in iters[-1]:
                if not keep(is_sync):
                    continue
                if state.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if not state.get(target):
                    state[target] = 1
                    path.append(target)
                    iters.append(iter(edges[target]))
                    break
            else:
                state[path.pop()] = 2
                iters.pop()
    return None
