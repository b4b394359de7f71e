"""The rate limiter and the deferral of a message: one contract, every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt

from flowbus.queue import AttemptError, MessageKind, MessageState, OutgoingMessage, QueueName
from flowbus.runtime.changes import Changeset, Retry

T0 = 1_800_000_000.0
OUT = QueueName.OUTBOUND


async def test_turns_are_spaced_by_the_interval(backend):
    waits = [await backend.take_rate("crm", now=T0, interval_s=0.5, max_wait_s=10) for _ in range(4)]
    assert waits == [0.0, 0.5, 1.0, 1.5]
    # later on, the limiter has caught up: a turn at once
    assert await backend.take_rate("crm", now=T0 + 60, interval_s=0.5, max_wait_s=10) == 0.0


async def test_a_turn_too_far_away_is_not_taken(backend):
    assert await backend.take_rate("crm", now=T0, interval_s=2, max_wait_s=1) == 0.0
    assert await backend.take_rate("crm", now=T0, interval_s=2, max_wait_s=1) == 2.0  # refused: nothing moves
    assert await backend.take_rate("crm", now=T0, interval_s=2, max_wait_s=1) == 2.0
    assert await backend.take_rate("crm", now=T0 + 1, interval_s=2, max_wait_s=1) == 1.0  # taken
    assert await backend.take_rate("crm", now=T0 + 1, interval_s=2, max_wait_s=5) == 3.0


async def test_limiters_are_apart_by_key(backend):
    await backend.take_rate("crm", now=T0, interval_s=5, max_wait_s=10)
    assert await backend.take_rate("erp", now=T0, interval_s=5, max_wait_s=10) == 0.0


async def test_a_hold_pushes_the_next_turn_without_taking_one(backend):
    hold = await backend.take_rate("crm", now=T0, interval_s=0, max_wait_s=float("inf"), not_before=T0 + 30)
    assert hold == 30.0
    assert await backend.take_rate("crm", now=T0 + 1, interval_s=1, max_wait_s=5) == 29.0  # refused
    assert await backend.take_rate("crm", now=T0 + 1, interval_s=1, max_wait_s=60) == 29.0
    assert await backend.take_rate("crm", now=T0 + 1, interval_s=1, max_wait_s=60) == 30.0
    # a hold never moves the time back
    await backend.take_rate("crm", now=T0, interval_s=0, max_wait_s=float("inf"), not_before=T0 + 5)
    assert await backend.take_rate("crm", now=T0 + 1, interval_s=1, max_wait_s=60) == 31.0


async def test_concurrent_takers_each_get_a_turn_of_their_own(backend):
    waits = await asyncio.gather(
        *(backend.take_rate("crm", now=T0, interval_s=0.25, max_wait_s=100) for _ in range(20))
    )
    assert sorted(waits) == [i * 0.25 for i in range(20)]


async def test_a_deferred_message_keeps_its_attempts_and_shows_throttled_until_due(backend):
    [message_id] = await backend.send([OutgoingMessage(OUT, MessageKind.HANDLER, {"handler": "h", "event_id": "e"})])
    now = dt.datetime.now(dt.UTC)
    record = AttemptError(0, "throttled: HTTP 429", now)
    for counted in (1, 0):
        [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
        defer = Retry(message.id, "w1", record, now, deferred=True, counted=counted)  # due at once
        await backend.apply(Changeset(retries=[defer]))
    [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
    assert message.attempts == 0 and message.deferrals == 1 and message.errors == ()
    later = now + dt.timedelta(hours=1)
    await backend.apply(Changeset(retries=[Retry(message.id, "w1", record, later, deferred=True, counted=1)]))
    stored = await backend.get_message(message_id)
    assert stored.state is MessageState.READY and stored.deferrals == 2 and stored.attempts == 0
    assert stored.shown_state(dt.datetime.now(dt.UTC)) == "throttled"
    assert stored.shown_state(later) == "ready"
    assert await backend.claim([OUT], limit=1, owner="w1", lease_s=30) == []  # not due


async def test_a_failure_after_a_deferral_is_shown_scheduled_not_throttled(backend):
    [message_id] = await backend.send([OutgoingMessage(OUT, MessageKind.HANDLER, {"handler": "h", "event_id": "e"})])
    now = dt.datetime.now(dt.UTC)
    [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
    await backend.apply(Changeset(retries=[Retry(message.id, "w1", AttemptError(0, "x", now), now, deferred=True)]))
    [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
    later = now + dt.timedelta(hours=1)
    await backend.apply(Changeset(retries=[Retry(message.id, "w1", AttemptError(1, "boom", now), later)]))
    stored = await backend.get_message(message_id)
    assert stored.attempts == 1 and not stored.throttled
    assert stored.shown_state(dt.datetime.now(dt.UTC)) == "scheduled"


async def test_a_redriven_dead_letter_starts_again_with_no_deferrals(backend):
    [message_id] = await backend.send([OutgoingMessage(OUT, MessageKind.HANDLER, {"handler": "h", "event_id": "e"})])
    now = dt.datetime.now(dt.UTC)
    for _ in range(2):
        [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
        record = AttemptError(0, "throttled: HTTP 429", now)
        await backend.apply(Changeset(retries=[Retry(message.id, "w1", record, now, deferred=True, counted=1)]))
    [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
    await backend.apply(Changeset(retries=[Retry(message.id, "w1", AttemptError(1, "boom", now), now, dead=True)]))
    dead = await backend.get_message(message_id)
    assert dead.state is MessageState.DEAD and dead.deferrals == 2 and dead.attempts == 1
    assert await backend.redrive([message_id]) == 1
    redriven = await backend.get_message(message_id)
    assert redriven.state is MessageState.READY and redriven.attempts == 0
    assert redriven.deferrals == 0 and not redriven.throttled  # a fresh max_deferrals, as a fresh max_attempts
