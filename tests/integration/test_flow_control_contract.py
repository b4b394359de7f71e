"""Flow control in the store contract: concurrency keys, rate limits and priority, held by every
backend's claim (memory, SQLite and PostgreSQL) the same way."""

from __future__ import annotations

import asyncio
import datetime as dt

from flowbus.queue import AttemptError, MessageKind, MessageState, OutgoingMessage, QueueName
from flowbus.runtime.changes import Ack, Changeset, Retry

OUT = QueueName.OUTBOUND


def job(n: int, group: str | None = None, **limits) -> OutgoingMessage:
    return OutgoingMessage(OUT, MessageKind.HANDLER, {"handler": "h", "event_id": f"e{n}"}, group, **limits)


def keyed(n: int, key: str, limit: int = 2, group: str | None = None) -> OutgoingMessage:
    return job(n, group, concurrency_key=key, concurrency_limit=limit)


def rated(n: int, key: str, interval_s: float) -> OutgoingMessage:
    return job(n, rate_key=key, rate_interval_s=interval_s)


async def claim(backend, limit=10, owner="w1", lease_s=30.0):
    return await backend.claim([QueueName.INBOUND, OUT], limit=limit, owner=owner, lease_s=lease_s)


def events(messages) -> list[str]:
    return [m.body["event_id"] for m in messages]


async def held(backend) -> dict[str, int]:
    return {s.held: s.messages for s in await backend.held_stats()}


async def test_a_concurrency_key_leases_at_most_its_limit_and_the_others_wait_without_attempts(backend):
    ids = await backend.send([keyed(n, "handler:h=A") for n in range(5)] + [keyed(9, "handler:h=B")])
    first = await claim(backend)
    assert events(first) == ["e0", "e1", "e9"]  # two of A, its limit; B has its own slots
    assert await claim(backend, owner="w2") == []  # every slot of A taken, across claimers
    waiting = await backend.get_message(ids[2])
    assert waiting.shown_state(dt.datetime.now(dt.UTC)) == "waiting_for_slot"
    assert waiting.attempts == 0 and waiting.to_dict()["state"] == "waiting_for_slot"
    assert await held(backend) == {"waiting_for_slot": 3}
    await backend.apply(Changeset(acks=[Ack(first[0].id, "w1")]))  # an ack frees a slot
    assert events(await claim(backend, owner="w2")) == ["e2"]
    assert await claim(backend) == []


async def test_a_batch_never_takes_more_than_a_key_has_slots(backend):
    await backend.send([keyed(n, "k", limit=3) for n in range(10)])
    assert len(await claim(backend, limit=10)) == 3
    assert await claim(backend, limit=10) == []


async def test_a_retry_and_a_lease_running_out_free_a_slot(backend):
    await backend.send([keyed(n, "k", limit=1) for n in range(3)])
    [first] = await claim(backend)
    now = dt.datetime.now(dt.UTC)
    await backend.apply(Changeset(retries=[Retry(first.id, "w1", AttemptError(1, "bad", now), now)]))
    [again] = await claim(backend)  # the retried one, due at once, takes its slot back first
    assert again.id == first.id and again.attempts == 1
    await backend.release([again.id], owner="w1")
    [short] = await claim(backend, lease_s=0.2)
    assert await claim(backend) == []
    await asyncio.sleep(0.3)  # its worker is gone: the lease runs out, the slot is free
    [taken] = await claim(backend, owner="w2")
    assert taken.id == short.id  # the same message, its lease expired, is the group-free head


async def test_a_rate_limit_admits_one_message_per_interval_and_throttles_the_rest_to_their_turn(backend):
    ids = await backend.send([rated(n, "handler:h", 0.4) for n in range(3)])
    before = dt.datetime.now(dt.UTC)
    assert events(await claim(backend)) == ["e0"]
    throttled = [await backend.get_message(i) for i in ids[1:]]
    assert [m.shown_state(dt.datetime.now(dt.UTC)) for m in throttled] == ["throttled", "throttled"]
    assert [m.attempts for m in throttled] == [0, 0]
    turns = [(m.available_at - before).total_seconds() for m in throttled]
    assert turns[0] > 0.3 and abs(turns[1] - turns[0] - 0.4) < 0.001, turns  # one interval apart
    assert await held(backend) == {"throttled": 2}
    # waiting as scheduled, out of the claims' way, as a delayed message does
    assert (await backend.queue_depth())[(OUT, MessageState.SCHEDULED)] == 2
    assert await claim(backend) == []
    await asyncio.sleep(turns[0] - (dt.datetime.now(dt.UTC) - before).total_seconds() + 0.05)
    assert events(await claim(backend)) == ["e1"]
    assert await claim(backend) == []


async def test_rate_keys_are_apart_and_a_message_both_keyed_and_rated_needs_both(backend):
    await backend.send([rated(1, "a", 60), rated(2, "b", 60), rated(3, "a", 60)])
    assert events(await claim(backend)) == ["e1", "e2"]
    await backend.send([job(4, concurrency_key="c", concurrency_limit=1, rate_key="r", rate_interval_s=60)] * 2)
    assert events(await claim(backend)) == ["e4"]  # the second waits for its rate turn, then for a slot


async def test_higher_priority_is_claimed_first_and_a_group_keeps_its_order(backend):
    await backend.send([
        job(1, priority=1), job(2, priority=9), job(3), job(4, "g", priority=0), job(5, "g", priority=9),
    ])  # fmt: skip
    first = await claim(backend)
    assert events(first) == ["e2", "e3", "e1", "e4"]  # e5 waits behind its group's head, whatever its priority
    assert [m.priority for m in first] == [9, 5, 1, 0]
    await backend.apply(Changeset(acks=[Ack(m.id, "w1") for m in first]))
    assert events(await claim(backend)) == ["e5"]


async def test_a_claim_of_one_takes_the_highest_priority(backend):
    await backend.send([job(1), job(2, priority=7), job(3, priority=7)])
    assert events(await claim(backend, limit=1)) == ["e2"]
    assert events(await claim(backend, limit=1)) == ["e3"]
    assert events(await claim(backend, limit=1)) == ["e1"]


async def test_a_waiting_message_does_not_hold_back_messages_behind_it(backend):
    await backend.send([keyed(n, "k", limit=1) for n in range(20)] + [job(99)])
    assert events(await claim(backend, limit=5)) == ["e0"]  # the rest of k skipped in this batch
    assert events(await claim(backend, limit=5)) == ["e99"]  # k is full: not a candidate any more


async def test_a_plain_message_behind_a_backlog_at_its_rate_is_claimed_at_once(backend):
    # before: each claim filled its batch with messages of the key and throttled them, returning
    # nothing, and a worker whose claim comes back empty waits before it claims again
    await backend.send([rated(n, "handler:h", 1.0) for n in range(500)])
    await backend.send([job(999)])
    empty = 0
    for _ in range(100):
        got = events(await claim(backend))
        if "e999" in got:
            break
        empty += not got
    assert empty == 0


async def test_a_message_a_target_gave_back_is_counted_throttled_as_it_is_shown(backend):
    [message_id] = await backend.send([job(1)])
    [message] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
    now = dt.datetime.now(dt.UTC)
    deferral = Retry(message.id, "w1", AttemptError(0, "429", now), now + dt.timedelta(seconds=60), deferred=True)
    await backend.apply(Changeset(retries=[deferral]))
    assert (await backend.get_message(message_id)).shown_state(dt.datetime.now(dt.UTC)) == "throttled"
    assert await held(backend) == {"throttled": 1}


async def test_a_due_message_whose_rate_key_waits_for_its_turn_is_shown_and_counted_throttled(backend):
    ids = await backend.send([rated(n, "handler:h", 10.0) for n in range(3)])
    assert events(await claim(backend, limit=1)) == ["e0"]
    assert await claim(backend) == []  # the others are skipped until the key's next turn
    shown = [(await backend.get_message(i)).shown_state(dt.datetime.now(dt.UTC)) for i in ids[1:]]
    assert shown == ["throttled", "throttled"]
    assert await held(backend) == {"throttled": 2}
