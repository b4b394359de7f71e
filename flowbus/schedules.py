"""Schedules fire their ticks: each tick once, however many workers run, and missed ticks by policy.

Every worker looks at the schedules once a second (:func:`keep_schedules`). A tick is fired by
moving the schedule's last tick forward to it, in the transaction that queues its message
(:meth:`~flowbus.stores.protocols.ScheduleStore.advance_schedule`): the row only moves forward,
so of the workers that see a tick due one moves it and queues the message, the others find it
moved and queue nothing. The message is an ordinary one (an event to publish, or a flow to run):
a worker killed after the commit leaves it queued, one killed before leaves the tick due.

Ticks missed while no worker ran (``catch_up``):

- ``latest`` (default): the latest missed tick fires once, the others are skipped;
- ``all``: every missed tick fires, oldest first, at most ``max_catch_up`` of them (the newest);
- ``none``: a tick fires only while it is at most :data:`LATE_S` late; older ones are skipped.

A schedule no worker has seen before owes nothing from before it was seen: its first tick is
the latest one no more than :data:`LATE_S` ago, if any, then every tick after.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import NamedTuple

from cronsim import CronSim

from flowbus.config.plan import Plan
from flowbus.config.schedules import Schedule, zone
from flowbus.errors import FlowbusError, StoreError
from flowbus.queue import MessageKind, OutgoingMessage, QueueName
from flowbus.runtime.inbound import event_message
from flowbus.stores.protocols import ScheduleStore

logger = logging.getLogger("flowbus.schedules")

#: how late a tick may be and still fire under ``catch_up: none`` (and at a schedule's first sight):
#: a worker busy or restarting for a moment does not lose a tick
LATE_S = 60.0
#: how often a worker looks for due ticks
CHECK_S = 1.0


class Tick(NamedTuple):
    """One fire time of one schedule, and whether it fires or is only skipped past."""

    schedule: str
    at: dt.datetime
    fires: bool = True


def next_ticks(schedule: Schedule, after: dt.datetime, count: int) -> list[dt.datetime]:
    """The ``count`` fire times of ``schedule`` after ``after``, in its time zone."""
    found = CronSim(schedule.cron, after.astimezone(zone(schedule.timezone)))
    return [tick for tick, _ in zip(found, range(count), strict=False)]


def _ticks_back(schedule: Schedule, now: dt.datetime) -> Iterator[dt.datetime]:
    """The fire times at or before ``now``, newest first (cronsim's reverse walk starts at a time
    with microseconds, here ``now`` to the second, inclusive)."""
    start = now.astimezone(zone(schedule.timezone)).replace(microsecond=0) + dt.timedelta(microseconds=1)
    return iter(CronSim(schedule.cron, start, reverse=True))


def due_ticks(schedule: Schedule, last: dt.datetime | None, now: dt.datetime) -> list[Tick]:
    """The ticks to fire (or skip past) now, oldest first, after the ``last`` one fired (None:
    never), by the schedule's ``catch_up``; cronsim walks back at most ``max_catch_up`` plus one."""
    late = now - dt.timedelta(seconds=LATE_S)
    policy = schedule.catch_up if last is not None else "none"
    floor = last if last is not None else late
    limit = schedule.max_catch_up if policy == "all" else 1
    missed: list[dt.datetime] = []
    for tick in _ticks_back(schedule, now):
        if tick <= floor or len(missed) > limit:
            break
        missed.append(tick)
    if not missed:
        return []
    newest = missed[0]
    if policy == "none" and newest < late:
        return [Tick(schedule.name, newest, fires=False)]
    # the older ticks past the limit are skipped: firing the oldest kept one moves past them
    return [Tick(schedule.name, at) for at in reversed(missed[:limit])]


def tick_message(plan: Plan, schedule: Schedule, tick: dt.datetime, config_version: int | None) -> OutgoingMessage:
    """What a tick queues: the event to publish, checked now, or the logic flow to run."""
    at = tick.isoformat()
    if schedule.publish is not None:
        publish = schedule.publish
        return event_message(
            plan, publish.event, publish.properties, f"schedule/{schedule.name}", None, None, publish.event_version,
            config_version=config_version,
        )  # fmt: skip
    body = {"flow": schedule.run, "inputs": schedule.inputs, "schedule": schedule.name, "tick": at}
    return OutgoingMessage(QueueName.INBOUND, MessageKind.FLOW, body, None, None, config_version)


async def fire_due(
    store: ScheduleStore, plan: Plan, config_version: int | None, now: dt.datetime | None = None
) -> list[Tick]:
    """Fire every due tick of the plan's enabled schedules; the ticks this call fired (the others
    were fired by another worker, or skipped)."""
    now = now or dt.datetime.now(dt.UTC)
    schedules = [s for s in plan.config.schedules if s.enabled]
    if not schedules:
        return []
    last = await store.schedule_ticks()
    fired = []
    for schedule in schedules:
        for tick in due_ticks(schedule, last.get(schedule.name), now):
            messages = [tick_message(plan, schedule, tick.at, config_version)] if tick.fires else []
            if await store.advance_schedule(schedule.name, tick.at, messages) and tick.fires:
                fired.append(tick)
                logger.info("schedule fired", extra={"schedule": schedule.name, "tick": tick.at.isoformat()})
    return fired


async def keep_schedules(
    store: ScheduleStore, current: Callable[[], tuple[Plan, int | None]], stopping: asyncio.Event
) -> None:
    """Fire due ticks every :data:`CHECK_S` until ``stopping`` is set (a worker's task beside its
    claims). A store outage or a refused tick is said and tried again at the next check: the
    tick stays due, so nothing is lost."""
    while not stopping.is_set():
        plan, version = current()
        try:
            await fire_due(store, plan, version)
        except (StoreError, FlowbusError) as error:
            logger.warning("schedules could not fire; trying again", extra={"error": str(error)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), CHECK_S)
