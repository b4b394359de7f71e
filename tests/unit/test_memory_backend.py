"""What the memory backend does its own way: how it builds messages and how little it keeps."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc

from flowbus.events.frozen import freeze
from flowbus.queue import THROTTLED, MessageKind, MessageState, OutgoingMessage, QueuedMessage, QueueName
from flowbus.runtime.changes import Ack, Changeset, EntityWrite
from flowbus.runtime.records import Run, RunStatus, Trigger
from flowbus.stores.memory import MemoryBackend
from flowbus.stores.memory_index import IdIndex


async def test_a_message_sent_with_every_field_set_keeps_each_in_its_place():
    backend = MemoryBackend()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    outgoing = OutgoingMessage(
        QueueName.OUTBOUND, MessageKind.HANDLER, {"handler": "h"}, group_key="g", dedup_id="d", config_version=4,
        not_before=later, trace_context="00-trace", concurrency_key="ck", concurrency_limit=3, rate_key="rk",
        rate_interval_s=0.5, priority=7,
    )  # fmt: skip
    [message_id] = await backend.send([outgoing])
    message = await backend.get_message(message_id)
    assert message is not None
    expected = QueuedMessage(
        id=message_id, queue=QueueName.OUTBOUND, kind=MessageKind.HANDLER, body={"handler": "h"}, group_key="g",
        dedup_id="d", state=MessageState.SCHEDULED, attempts=0, config_version=4, created_at=message.created_at,
        available_at=later, trace_context="00-trace", concurrency_key="ck", concurrency_limit=3, rate_key="rk",
        rate_interval_s=0.5, priority=7,
    )  # fmt: skip
    assert message._asdict() == expected._asdict()


def handler_run(n: int, message_id: str) -> Changeset:
    """What a handler's run commits: a record it saved, its run, and the ack of its message."""
    run = Run(
        f"r{n}", "F", Trigger.HANDLER, RunStatus.SUCCEEDED, dt.datetime.now(dt.UTC), 0.0, freeze({}), freeze({}), (),
        event_id=f"e{n}", message_id=message_id,
    )  # fmt: skip
    return Changeset(
        writes={("Order", f"o{n}"): EntityWrite(freeze({"n": n}), 0)}, runs=[run], acks=[Ack(message_id, "w1")]
    )


async def test_committed_handler_runs_add_nothing_for_the_cycle_collector_to_walk():
    backend = MemoryBackend()
    n = 50
    outgoing = [OutgoingMessage(QueueName.OUTBOUND, MessageKind.HANDLER, {}, dedup_id=f"d{i}") for i in range(n)]
    sent = await backend.send(outgoing)
    assert [m.id for m in await backend.claim([QueueName.OUTBOUND], limit=n, owner="w1", lease_s=30.0)] == sent
    first, *rest = [handler_run(i, message_id) for i, message_id in enumerate(sent)]
    await backend.apply(first)  # the tables of records and runs, made once
    for changeset in rest:
        await backend.apply(changeset)
    gc.collect()
    # the records, runs and messages are the changesets' own objects, kept; the backend's versions
    # and indexes of them are dicts of strings and numbers, which the collector stops walking (the
    # old layout, a Versioned pair a record and a list of ids a key, kept 147 objects more here)
    untracked = {
        "runs by message": backend._runs_by_message._first,
        "runs by event": backend._runs_by_event._first,
        "versions": backend._entities["Order"].versions,
        "dedup ids": backend._dedup[QueueName.OUTBOUND],
    }
    assert [name for name, table in untracked.items() if gc.is_tracked(table)] == []
    assert len(backend._runs_by_message._first) == len(backend._entities["Order"].versions) == n
    assert [await backend.read_entity("Order", f"o{i}") for i in (0, n - 1)] == [
        (freeze({"n": 0}), 1), (freeze({"n": n - 1}), 1),
    ]  # fmt: skip
    assert [r.id for r in await backend.runs_for_message(sent[1])] == ["r1"]
    assert [m.state for m in await backend.dead_letters()] == []
    assert backend.open_messages() == []


def test_ids_filed_under_a_key_keep_their_order_and_go_with_it():
    index = IdIndex()
    for key, id_ in [("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")]:
        index.add(key, id_)
    assert (index.get("a"), index.get("b"), index.get("c")) == (["1", "3", "4"], ["2"], [])
    index.replace("a", ["3"])
    assert index.get("a") == ["3"]
    index.add("a", "5")
    assert index.get("a") == ["3", "5"]
    index.replace("a", [])
    assert index.get("a") == []
    index.add("a", "6")
    assert index.get("a") == ["6"]


async def test_a_throttled_message_once_claimed_is_no_longer_said_to_be_held():
    backend = MemoryBackend()
    outgoing = OutgoingMessage(QueueName.OUTBOUND, MessageKind.HANDLER, {}, rate_key="k", rate_interval_s=0.05)
    first, second = await backend.send([outgoing, outgoing])
    [claimed] = await backend.claim([QueueName.OUTBOUND], limit=2, owner="w1", lease_s=30.0)
    assert claimed.id == first
    throttled = await backend.get_message(second)
    assert throttled is not None and throttled.held == THROTTLED
    await asyncio.sleep(0.06)
    [claimed] = await backend.claim([QueueName.OUTBOUND], limit=2, owner="w1", lease_s=30.0)
    assert claimed.id == second and claimed.held is None
    leased = await backend.get_message(second)
    assert leased is not None and leased.state is MessageState.LEASED and leased.held is None


def test_the_fields_the_backend_copies_by_position_are_where_it_copies_them_from():
    """`_send` and `_in_state` build messages from slices of tuples, not by name: a field added to
    QueuedMessage or OutgoingMessage must keep these places, or move the slices with it."""
    queued, outgoing = QueuedMessage._fields, OutgoingMessage._fields
    assert len(queued) == 26 and queued[-1] == "held"
    assert outgoing[9:14] == queued[20:25] == (
        "concurrency_key", "concurrency_limit", "rate_key", "rate_interval_s", "priority",
    )  # fmt: skip
    assert (queued[6], queued[11], queued[12]) == ("state", "lease_owner", "lease_expires_at")
