"""Retention: removing what a project keeps past the ages of its ``retention`` policy.

Five kinds of record go, each on its own age (:class:`~flowbus.config.retention.Retention`):
event instances and runs are removed whole, never edited; a run's step runs are replaced by one
marker, so the run still shows its status, timings and error and its trace says the detail has
expired; finished messages (done or unmatched) go, but never a ready or leased one; dead letters
go, but never one that blocks its group.

Two ways in. :class:`Sweeper`, in every worker, removes a few small batches of each kind per tick,
each batch one short transaction on an indexed time column, so that claims are never held up
for long; the project's sweep lease (a row in the store) lets one worker at a time sweep a
project. :func:`purge` (``flowbus purge``, the admin API) removes or counts everything due at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from flowbus.config.retention import Retention, parse_duration
from flowbus.metrics import PROCESS
from flowbus.publishing import active_config
from flowbus.reads import utc_time
from flowbus.stores.protocols import Backend, RetentionKind

logger = logging.getLogger("flowbus.retention")

#: the order kinds are swept in: runs before their steps, so that the steps of a run about to go
#: are not rewritten first; runs before the event they ran for
KINDS = (
    RetentionKind.RUNS, RetentionKind.STEPS, RetentionKind.EVENTS, RetentionKind.MESSAGES,
    RetentionKind.DEAD_LETTERS,
)  # fmt: skip
#: rows one batch of ``flowbus purge`` removes: each batch is its own transaction
PURGE_BATCH = 1000


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cutoffs(
    policy: Retention, now: dt.datetime, kinds: Collection[RetentionKind] = KINDS
) -> dict[RetentionKind, dt.datetime]:
    """For each kind, the time before which its records are past their age."""
    return {kind: now - getattr(policy, kind.value) for kind in KINDS if kind in kinds}


async def purge(
    backend: Backend, before: Mapping[RetentionKind, dt.datetime], *, dry_run: bool = False, batch: int = PURGE_BATCH
) -> dict[RetentionKind, int]:
    """Remove every record of each kind made before its time, batch by batch; how many of each.
    ``dry_run``: count them, remove nothing."""
    removed: dict[RetentionKind, int] = {}
    for kind in KINDS:
        if kind not in before:
            continue
        if dry_run:
            removed[kind] = await backend.purgeable(kind, before[kind])
            if kind is RetentionKind.STEPS and RetentionKind.RUNS in before:
                # the runs removed first take their steps with them
                gone_first = min(before[RetentionKind.RUNS], before[kind])
                removed[kind] -= await backend.purgeable(kind, gone_first)
            continue
        removed[kind] = 0
        while True:
            count = await backend.purge(kind, before[kind], limit=batch)
            removed[kind] += count
            if count < batch:
                break
    if not dry_run:
        _count(backend.project, removed)
        await backend.reclaim_space()
    return removed


def parse_kinds(text: str) -> tuple[RetentionKind, ...]:
    """``events,runs`` as kinds; raises ValueError naming what is not one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in RetentionKind.__members__.values()]
    if unknown or not names:
        raise ValueError(f"{', '.join(unknown) or 'nothing'} is not a kind; give some of {', '.join(KINDS)}")
    return tuple(RetentionKind(name) for name in names)


def parse_before(text: str, now: dt.datetime) -> dt.datetime:
    """A time (ISO 8601; UTC when it names no offset), or an age (``30d``: that long before ``now``).
    Raises ValueError saying why not."""
    try:
        age: dt.timedelta = parse_duration(text)
    except ValueError:
        try:
            return utc_time(text)
        except ValueError as exc:
            raise ValueError(f"{text[:64]!r} is neither an age (30d) nor a time: {exc}") from None
    return now - age


async def purge_due(
    backend: Backend,
    *,
    kinds: Collection[RetentionKind] = KINDS,
    before: dt.datetime | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> dict[RetentionKind, int]:
    """What ``flowbus purge`` and the admin API remove (or count): of each kind, what is older
    than ``before``, or else past its age in the active config's policy (the defaults without one)."""
    if before is not None:
        due = {kind: before for kind in KINDS if kind in kinds}
    else:
        found = await active_config(backend)
        policy = found[1].config.retention if found is not None else Retention()
        due = cutoffs(policy, now or utc_now(), kinds)
    return await purge(backend, due, dry_run=dry_run)


@dataclass(frozen=True, kw_only=True)
class SweepSettings:
    #: how often a worker sweeps (the first sweep this long after it starts)
    every_s: float = 60.0
    #: rows a batch removes: one short transaction (on PostgreSQL, small enough for autovacuum)
    batch: int = 500
    #: batches of each kind a tick removes at most: a backlog is worked off over several ticks
    batches: int = 8
    #: the share of the worker's time sweeping takes at most: after a batch that took t seconds it
    #: pauses t * (1 - share) / share, in which the worker's claims and commits go on
    share: float = 0.03
    #: how long the sweep lease is held without being renewed (a worker that died lets go after it)
    lease_s: float = 300.0


class Sweeper:
    """Removes what is past its age, a bounded amount each :meth:`tick`."""

    def __init__(
        self,
        backend: Backend,
        policy: Callable[[], Retention],
        *,
        owner: str,
        settings: SweepSettings | None = None,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.backend = backend
        #: the policy in force (read each tick: a new config version may change it)
        self.policy = policy
        self.owner = owner
        self.settings = settings or SweepSettings()
        self._now = now
        #: when (time.perf_counter) the pause after the last batch ends
        self._rest_until = 0.0

    async def tick(self) -> dict[RetentionKind, int] | None:
        """One sweep: how many of each kind it removed, or None when another worker holds the
        project's sweep lease."""
        settings = self.settings
        now = self._now()
        if not await self.backend.take_sweep(self.owner, now=now, lease_s=settings.lease_s):
            return None
        removed: dict[RetentionKind, int] = {}
        backlog = lost = False
        for kind, before in cutoffs(self.policy(), now).items():
            removed[kind] = 0
            if kind is RetentionKind.STEPS and backlog:
                continue  # runs are still going: their steps go with them, not rewritten first
            for _ in range(settings.batches):
                count = await self._paced(kind, before)
                if count is None:
                    lost = True
                    break
                removed[kind] += count
                if count < settings.batch:
                    break
            else:
                backlog = backlog or kind is RetentionKind.RUNS
            if lost:
                break
        if any(removed.values()):
            _count(self.backend.project, removed)
            await self.backend.reclaim_space()
            logger.info("retention sweep", extra={"removed": {kind.value: n for kind, n in removed.items() if n}})
        return removed

    async def _paced(self, kind: RetentionKind, before: dt.datetime) -> int | None:
        """One batch, after the pause the last one earned: sweeping keeps to its share of the time.
        None, and nothing removed, when the sweep lease was lost meanwhile.

        The lease is renewed before every batch: a tick of many slow batches (and their pauses)
        may outlast it, and another worker would then take it and sweep alongside this one."""
        await asyncio.sleep(max(0.0, self._rest_until - time.perf_counter()))
        if not await self.backend.take_sweep(self.owner, now=self._now(), lease_s=self.settings.lease_s):
            return None
        started = time.perf_counter()
        count = await self.backend.purge(kind, before, limit=self.settings.batch)
        ended = time.perf_counter()
        self._rest_until = ended + (ended - started) * (1 - self.settings.share) / self.settings.share
        return count


def _count(project: str, removed: Mapping[RetentionKind, int]) -> None:
    for kind, count in removed.items():
        if count:
            PROCESS.purged.labels(project, kind.value).inc(count)
