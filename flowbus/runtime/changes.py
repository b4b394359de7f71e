"""What a run hands to storage, and what it reads back: the runtime's side of the store contract.

A run collects everything it changes in a :class:`~flowbus.runtime.unit_of_work.UnitOfWork`:
entity writes, published event instances, queued messages, run records, and the acknowledgement
of the message it ran for. A backend applies such a :class:`Changeset` atomically, or not at all.
Concurrency is optimistic: every entity read remembers the record's version, and a backend
refuses a changeset (with :class:`Conflict`) whose reads another writer has since changed, or
whose message lease was lost. The worker then retries the run.

The runtime defines these, and :class:`RunStore`, the few store methods a run calls; the
backends in :mod:`flowbus.stores` implement them. So the runtime imports no store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from flowbus.errors import FlowbusError
from flowbus.events.instance import EventInstance
from flowbus.queue import AttemptError, MessageState, OutgoingMessage
from flowbus.runtime.records import Run

Record = Mapping[str, Any]


class Conflict(FlowbusError):
    """The changeset cannot apply: a record it read has changed, or its message lease was lost."""


class Versioned(NamedTuple):
    """A committed entity record and its version (1 for a new record, +1 per write)."""

    record: Record
    version: int


class EntityWrite(NamedTuple):
    """``record`` None deletes. ``expected_version``: the version read (0: read as absent; None: not read)."""

    record: Record | None
    expected_version: int | None


class Ack(NamedTuple):
    """Mark a leased message finished (``done``, or ``unmatched``), if the lease is still ``owner``'s."""

    message_id: str
    owner: str
    state: MessageState = MessageState.DONE


class Retry(NamedTuple):
    """Give a leased message back: ready again at ``available_at``, or dead when ``dead``."""

    message_id: str
    owner: str
    error: AttemptError
    available_at: dt.datetime
    dead: bool = False
    blocking: bool = False
    #: given back without spending an attempt (``throttled``); ``error`` is not kept, and the
    #: message's count of deferrals grows by ``counted`` (0 or 1)
    deferred: bool = False
    counted: int = 0


@dataclass(kw_only=True)
class Changeset:
    """Everything one unit of work changes, applied all together or not at all."""

    writes: dict[tuple[str, str], EntityWrite] = field(default_factory=dict)
    events: list[EventInstance] = field(default_factory=list)
    messages: list[OutgoingMessage] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    #: changesets of the same batch whose writes this one read: refused with them
    after: list[Changeset] = field(default_factory=list)


def caused_events(events: Sequence[EventInstance]) -> dict[str, int]:
    """Events that count against their chain's root, by ``correlation_id``, in sorted order:
    every one but a root event (depth 0), which its root is, not causes.

    Sorted, so that writers raising the same counters take their row locks in one order.
    """
    counts: dict[str, int] = {}
    for instance in events:
        if instance.depth:
            counts[instance.correlation_id] = counts.get(instance.correlation_id, 0) + 1
    return dict(sorted(counts.items()))


class RunStore(Protocol):
    """The store methods a run calls: committed reads, its journal, and handing over its changes."""

    async def read_entity(self, entity: str, key: str) -> Versioned | None: ...

    async def get_event(self, event_id: str) -> EventInstance | None: ...

    async def get_events(self, event_ids: Sequence[str]) -> Sequence[EventInstance]:
        """The events of ``event_ids`` that exist, in one read (a claimed batch's events)."""

    async def chain_events(self, correlation_id: str) -> int:
        """Events the root ``correlation_id`` has caused (every one in its chain but a root event)."""

    async def journaled_output(self, execution_key: str, step_key: str) -> tuple[bool, Any]:
        """``(True, output)`` when the step already ran for this execution; else ``(False, None)``."""

    async def journal_step(self, execution_key: str, step_key: str, output: Any) -> None:
        """Keep a step's output the moment it finishes, for a retry to replay instead of redoing it."""

    async def apply(self, changeset: Changeset) -> None:
        """Apply a changeset atomically; raises :class:`Conflict` when a read is stale or a lease lost."""

    async def record_runs(self, runs: Sequence[Run]) -> None:
        """Keep the records of runs whose unit of work was rolled back (their trace)."""

    async def take_rate(
        self, key: str, *, now: float, interval_s: float, max_wait_s: float, not_before: float = 0.0
    ) -> float:
        """Take a turn of a shared rate limiter: seconds to wait (see ``RateStore.take_rate``)."""
