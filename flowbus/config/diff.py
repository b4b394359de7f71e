"""Structural diff of two config versions (design §6): what a reviewer needs before publishing.

Items are matched by name and steps by id rather than by position, so that inserting a flow or a
step does not show everything after it as changed. Values are compared as the JSON the models
dump, defaults included: a field written out at its default is no change, and decimals compare by
their exact text. Dicts are walked down to the deepest key that differs; lists are whole values,
except a flow's steps, which are diffed one by one.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from flowbus.config.event_versions import EventVersions
from flowbus.config.model import Config, EventDefinition, Flow, Handler, HttpTarget, Source, StoreTarget
from flowbus.config.steps import BaseStep

Item = Source | EventDefinition | Flow | Handler | StoreTarget | HttpTarget
_Item = TypeVar("_Item", bound=Item)
Section = Literal["project", "sources", "events", "flows", "handlers", "targets", "retention"]

#: every section in the order of the config file, with the word for one of its items
SECTIONS: dict[Section, str] = {
    "project": "project",
    "sources": "source",
    "events": "event",
    "flows": "flow",
    "handlers": "handler",
    "targets": "target",
    "retention": "retention of",
}


class ChangeKind(enum.StrEnum):
    #: only in the new version
    ADDED = "added"
    #: only in the old version
    REMOVED = "removed"
    #: in both, with different fields
    CHANGED = "changed"
    #: steps only: in both, but in another block or out of order with its siblings
    MOVED = "moved"


@dataclass(frozen=True, kw_only=True)
class StepChange:
    """One fact about one step; a step both edited and moved gives a ``changed`` and a ``moved``."""

    step_id: str
    kind: ChangeKind
    #: for ``changed``: dotted paths relative to the step, nested steps left out
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"step {self.step_id} {self.kind}"
        return f"{text} ({', '.join(self.fields)})" if self.fields else text

    def to_data(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "kind": str(self.kind), "fields": list(self.fields)}


@dataclass(frozen=True, kw_only=True)
class ItemChange:
    """An added, removed or changed source, event, flow, handler, target, or the project."""

    section: Section
    name: str
    kind: ChangeKind
    #: for ``changed``: dotted paths relative to the item (a flow's ``steps`` are in ``steps``)
    fields: tuple[str, ...] = ()
    steps: tuple[StepChange, ...] = ()

    def line(self) -> str:
        noun = f"{SECTIONS[self.section]} {self.name}"
        if self.kind is ChangeKind.ADDED:
            return f"+ {noun}"
        if self.kind is ChangeKind.REMOVED:
            return f"- {noun}"
        parts = [", ".join(self.fields)] if self.fields else []
        parts += [step.describe() for step in self.steps]
        return f"~ {noun}: {'; '.join(parts)}"

    def to_data(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "kind": str(self.kind),
            "fields": list(self.fields),
            "steps": [step.to_data() for step in self.steps],
        }


@dataclass(frozen=True, kw_only=True)
class OlderSubscription:
    """A handler of the new version that still listens to an event version a newer one replaces."""

    handler: str
    event: str
    version: int
    latest: int

    def line(self) -> str:
        return f"! handler {self.handler} listens to {self.event} v{self.version}; the latest is v{self.latest}"

    def to_data(self) -> dict[str, Any]:
        return {"handler": self.handler, "event": self.event, "version": self.version, "latest": self.latest}


@dataclass(frozen=True, kw_only=True)
class ConfigDiff:
    """Every difference between two versions: sections in file order; in each, items in the new
    version's order, then removed items in the old one's, so that equal inputs print equal diffs."""

    changes: tuple[ItemChange, ...] = ()
    #: not a change: what a reviewer moving handlers to a new event version still has to do
    older_subscriptions: tuple[OlderSubscription, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> str:
        """One line for a CLI status or a version list, e.g. ``flows: 1 added, 2 changed``."""
        parts = []
        for section in SECTIONS:
            counts = [
                f"{n} {kind}"
                for kind in (ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.CHANGED)
                if (n := sum(1 for c in self.changes if c.section == section and c.kind is kind))
            ]
            if counts:
                parts.append(f"{section}: {', '.join(counts)}")
        return "; ".join(parts) or "no changes"

    def lines(self) -> list[str]:
        return [change.line() for change in self.changes] + [older.line() for older in self.older_subscriptions]

    def to_data(self) -> dict[str, Any]:
        """Plain dicts and lists, ready for ``json.dumps`` (CLI ``--json``, HTTP API); the
        ``older_subscriptions`` key only when there are some."""
        data = {"summary": self.summary(), "changes": [change.to_data() for change in self.changes]}
        if self.older_subscriptions:
            data["older_subscriptions"] = [older.to_data() for older in self.older_subscriptions]
        return data


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """Pure and store-free, so that the CLI, the HTTP API and the dashboard all diff the same way."""
    changes: list[ItemChange] = []
    project_fields = _changed_paths(_dump(old.project), _dump(new.project))
    if project_fields:
        changes.append(
            ItemChange(section="project", name=new.project.name, kind=ChangeKind.CHANGED, fields=project_fields)
        )
    for section in ("sources", "events", "flows", "handlers", "targets"):
        if section == "events":
            changes += _diff_events(old.events, new.events)
        else:
            changes += _diff_section(section, getattr(old, section), getattr(new, section))
    retention_fields = _changed_paths(_dump(old.retention), _dump(new.retention))
    if retention_fields:
        changes.append(
            ItemChange(section="retention", name=new.project.name, kind=ChangeKind.CHANGED, fields=retention_fields)
        )
    return ConfigDiff(changes=tuple(changes), older_subscriptions=tuple(_older_subscriptions(new)))


def _name(item: Item) -> str:
    return item.name


def _diff_section(
    section: Section,
    old: Sequence[_Item],
    new: Sequence[_Item],
    key: Callable[[_Item], Hashable] = _name,
    label: Callable[[_Item], str] = _name,
) -> Iterator[ItemChange]:
    """Items matched by ``key`` and named by ``label`` (both the item's name unless told)."""
    old_by_key = {key(item): item for item in old}
    new_keys = {key(item) for item in new}
    for item in new:
        before = old_by_key.get(key(item))
        if before is None:
            yield ItemChange(section=section, name=label(item), kind=ChangeKind.ADDED)
            continue
        fields = _changed_paths(_dump(before, exclude={"steps"}), _dump(item, exclude={"steps"}))
        steps = _diff_steps(before, item) if isinstance(before, Flow) and isinstance(item, Flow) else ()
        if fields or steps:
            yield ItemChange(section=section, name=label(item), kind=ChangeKind.CHANGED, fields=fields, steps=steps)
    for item in old:
        if key(item) not in new_keys:
            yield ItemChange(section=section, name=label(item), kind=ChangeKind.REMOVED)


def _diff_events(old: Sequence[EventDefinition], new: Sequence[EventDefinition]) -> Iterator[ItemChange]:
    """Events by name and version; an event defined once in both is matched by name, so that
    bumping its one version reads as a change of its ``version``, not as a new event."""
    before, after = EventVersions(old), EventVersions(new)

    def key(item: EventDefinition) -> Hashable:
        single = not before.several(item.name) and not after.several(item.name)
        return item.name if single else (item.name, item.version)

    def label(item: EventDefinition) -> str:
        return (after if item in new else before).label(item)

    return _diff_section("events", old, new, key, label)


def _older_subscriptions(config: Config) -> Iterator[OlderSubscription]:
    events = EventVersions(config.events)
    for handler in config.handlers:
        latest = events.latest.get(handler.event)
        if handler.event_version is not None and latest is not None and handler.event_version < latest.version:
            yield OlderSubscription(
                handler=handler.name, event=handler.event, version=handler.event_version, latest=latest.version
            )


@dataclass(frozen=True, kw_only=True)
class _Placed:
    """A step with where it sits: the block (parent step id and field path) and its data."""

    block: tuple[str | None, str]
    data: dict[str, Any]


def _diff_steps(old: Flow, new: Flow) -> tuple[StepChange, ...]:
    before, after = dict(_place_steps(old.steps)), dict(_place_steps(new.steps))
    moved = _moved_ids(before, after)
    changes: list[StepChange] = []
    for step_id, placed in after.items():
        if step_id not in before:
            changes.append(StepChange(step_id=step_id, kind=ChangeKind.ADDED))
            continue
        fields = _changed_paths(before[step_id].data, placed.data)
        if fields:
            changes.append(StepChange(step_id=step_id, kind=ChangeKind.CHANGED, fields=fields))
        if step_id in moved:
            changes.append(StepChange(step_id=step_id, kind=ChangeKind.MOVED))
    changes += [StepChange(step_id=i, kind=ChangeKind.REMOVED) for i in before if i not in after]
    return tuple(changes)


def _place_steps(
    steps: Sequence[BaseStep], block: tuple[str | None, str] = (None, "steps")
) -> Iterator[tuple[str, _Placed]]:
    """Every step of a flow in reading order, by id (the loader makes ids unique within a flow)."""
    for step in steps:
        data = _dump(step)
        blocks = step.blocks()
        for path, _ in blocks:
            _pop(data, path)  # nested steps are diffed by id, not as a field of their parent
        yield step.id, _Placed(block=block, data=data)
        for path, children in blocks:
            yield from _place_steps(children, (step.id, ".".join(map(str, path))))


def _moved_ids(before: Mapping[str, _Placed], after: Mapping[str, _Placed]) -> set[str]:
    """Steps now in another block, plus the fewest kept steps whose reordering explains the rest."""
    moved = {i for i, placed in after.items() if i in before and before[i].block != placed.block}
    for block in {placed.block for placed in after.values()}:
        old_order = [i for i, p in before.items() if p.block == block and i in after and after[i].block == block]
        new_order = [i for i, p in after.items() if p.block == block and i in old_order]
        moved |= set(new_order) - _longest_common_order(old_order, new_order)
    return moved


def _longest_common_order(old: list[str], new: list[str]) -> set[str]:
    """The largest set of ids whose relative order both lists share (a longest common subsequence)."""
    longest = [[0] * (len(new) + 1) for _ in range(len(old) + 1)]
    for i in reversed(range(len(old))):
        for j in reversed(range(len(new))):
            longest[i][j] = longest[i + 1][j + 1] + 1 if old[i] == new[j] else max(longest[i + 1][j], longest[i][j + 1])
    kept: set[str] = set()
    i = j = 0
    while i < len(old) and j < len(new):
        if old[i] == new[j]:
            kept.add(old[i])
            i, j = i + 1, j + 1
        elif longest[i + 1][j] >= longest[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def _dump(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude=exclude)


def _pop(data: Any, path: Sequence[str | int]) -> None:
    *outer, last = path
    for part in outer:
        data = data[part]
    del data[last]


_MISSING = object()


def _changed_paths(old: Any, new: Any, prefix: str = "") -> tuple[str, ...]:
    """The deepest dotted paths at which two dumped values differ; dict key order does not count."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [*new, *(k for k in old if k not in new)]
        return tuple(
            path for k in keys for path in _changed_paths(old.get(k, _MISSING), new.get(k, _MISSING), f"{prefix}{k}.")
        )
    if old is _MISSING or new is _MISSING or _canonical(old) != _canonical(new):
        return (prefix.removesuffix("."),)
    return ()


def _canonical(value: Any) -> str:
    # JSON text tells true from 1 and 1 from 1.0, which == on Python values does not
    return json.dumps(value, sort_keys=True)
