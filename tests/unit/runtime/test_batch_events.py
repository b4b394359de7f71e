"""A claimed batch's events are read once, in one read, before its runs: none is read per run."""

from __future__ import annotations

from flowbus.queue import QueueName

CONFIG = """
events:
  - name: OrderPlaced
    properties: {OrderId: {type: String, required: true}}
flows:
  - name: Note
    inputs: {OrderId: {type: String, required: true}}
    steps: [{id: note, action: save, entity: Note, data: {id: "=inputs.OrderId"}}]
handlers:
  - {name: confirm, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId}}
  - {name: count, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId}}
"""


async def test_a_batch_larger_than_the_memo_of_events_runs_without_reading_an_event_again(engine_for, monkeypatch):
    engine = engine_for(CONFIG)
    published = [await engine.publish("OrderPlaced", {"OrderId": f"o{n}"}) for n in range(300)]  # past the memo's 256
    backend = engine.backend
    claimed = await backend.claim([QueueName.OUTBOUND], limit=600, owner="w", lease_s=30)
    assert len(claimed) == 600
    reads: list[list[str]] = []
    read_events = backend.get_events

    async def counted(event_ids):  # the real read, counted
        reads.append(list(event_ids))
        return await read_events(event_ids)

    async def refused(event_id):
        raise AssertionError(f"event {event_id} was read on its own")

    monkeypatch.setattr(backend, "get_events", counted)
    monkeypatch.setattr(backend, "get_event", refused)
    await engine.runner.read_events_of(claimed)
    runs = [run for message in claimed for run in await engine.runner.process(message, engine.begin())]
    assert [sorted(ids) for ids in reads] == [sorted(e.id for e in published)]
    assert len(runs) == 600 and all(run.succeeded for run in runs)
    await engine.runner.read_events_of(claimed)  # all in hand: nothing read
    assert len(reads) == 1


async def test_a_batch_whose_events_are_in_hand_reads_nothing_and_the_memo_is_cut_back_to_its_size(engine_for):
    engine = engine_for(CONFIG)
    for n in range(300):
        await engine.publish("OrderPlaced", {"OrderId": f"o{n}"})
    claimed = await engine.backend.claim([QueueName.OUTBOUND], limit=600, owner="w", lease_s=30)
    runner = engine.runner
    await runner.read_events_of(claimed[:500])  # 250 events
    await runner.read_events_of(claimed[500:])  # 50 more: the oldest make room
    assert len(runner._recent_events) == 256
    assert all(m.body["event_id"] in runner._recent_events for m in claimed[500:])


async def test_a_batch_keeps_the_events_it_needs_that_were_in_hand_when_room_is_made(engine_for, monkeypatch):
    """The memo is full of earlier events, one of which this batch needs again (its other
    handler's message): room for the batch's new events is made by events it does not need."""
    engine = engine_for(CONFIG)
    published = [await engine.publish("OrderPlaced", {"OrderId": f"o{n}"}) for n in range(266)]
    claimed = await engine.backend.claim([QueueName.OUTBOUND], limit=532, owner="w", lease_s=30)
    by_event = {m.body["event_id"]: [] for m in claimed}
    for m in claimed:
        by_event[m.body["event_id"]].append(m)
    runner = engine.runner
    await runner.read_events_of([by_event[e.id][0] for e in published[:256]])  # the memo is full
    batch = [by_event[published[0].id][1], *(m for e in published[256:] for m in by_event[e.id])]

    async def refused(event_id):
        raise AssertionError(f"event {event_id} was read on its own")

    monkeypatch.setattr(engine.backend, "get_event", refused)
    await runner.read_events_of(batch)
    runs = [run for message in batch for run in await runner.process(message, engine.begin())]
    assert len(runs) == 21 and all(run.succeeded for run in runs)
    assert len(runner._recent_events) == 256
