"""The store contract: every backend passes the same tests (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from flowbus.codec import encode
from flowbus.config.versions import ConfigVersion
from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import floor_id, new_id, time_of
from flowbus.queue import AttemptError, MessageKind, MessageState, OutgoingMessage, QueueName
from flowbus.runtime.bounds import RuntimeLimits, bounded_steps, retried_attempt, steps_marker
from flowbus.runtime.changes import Ack, Changeset, Conflict, EntityWrite, Retry
from flowbus.runtime.records import Run, RunStatus, StepRun, StepStatus, Trigger
from flowbus.runtime.unit_of_work import UnitOfWork
from flowbus.stores.protocols import DeadLetterFilter, EventFilter, Manifest, RunFilter, RunPoint

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
OUT = QueueName.OUTBOUND


def job(n: int, group: str | None = None, dedup: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(OUT, MessageKind.HANDLER, {"handler": "h", "event_id": f"e{n}"}, group, dedup)


def event(n: int, correlation: str = "c1") -> EventInstance:
    return EventInstance(
        id=f"0000-{n}", type="OrderPlaced", version=1, source="tests", time=NOW,
        data=freeze({"Total": Decimal("19.90"), "When": NOW, "Lines": [{"Sku": "a"}]}),
        correlation_id=correlation, causation_id=None, depth=n,
    )  # fmt: skip


def run(run_id: str, *, event_id: str | None = None, message_id: str | None = None, parent: str | None = None) -> Run:
    step = StepRun(
        "s",
        "s",
        "save",
        StepStatus.SUCCEEDED,
        freeze({"data": {"n": Decimal("1.5")}}),
        freeze({"id": "x"}),
        None,
        0.001,
    )
    return Run(
        id=run_id, flow="F", trigger=Trigger.HANDLER, status=RunStatus.SUCCEEDED, started_at=NOW, duration_s=0.002,
        inputs=freeze({"When": NOW}), outputs=freeze({"total": Decimal("2.50")}), steps=(step,), handler="h",
        event_id=event_id, message_id=message_id, parent_run_id=parent, config_version=3, attempt=2,
    )  # fmt: skip


async def claim(backend, limit=10, owner="w1", lease_s=30.0):
    return await backend.claim([QueueName.INBOUND, OUT], limit=limit, owner=owner, lease_s=lease_s)


async def ack(backend, message, owner="w1"):
    await backend.apply(Changeset(acks=[Ack(message.id, owner)]))


# -- entities and changesets -------------------------------------------------------------------


async def test_a_unit_of_work_commits_entities_with_versions(backend):
    uow = UnitOfWork(backend)
    assert await uow.get("Order", "o1") is None
    await uow.put("Order", "o1", {"total": Decimal("1.10"), "at": NOW})
    assert await backend.read_entity("Order", "o1") is None  # nothing visible before commit
    await uow.commit()
    stored = await backend.read_entity("Order", "o1")
    assert stored.record == {"total": Decimal("1.10"), "at": NOW} and stored.version == 1
    uow = UnitOfWork(backend)
    record = await uow.get("Order", "o1")
    await uow.put("Order", "o1", {**record, "total": Decimal("2.20")})
    await uow.commit()
    assert (await backend.read_entity("Order", "o1")).version == 2
    assert await backend.entities("Order") == {"o1": {"total": Decimal("2.20"), "at": NOW}}


async def test_a_stale_read_conflicts_and_nothing_of_the_changeset_applies(backend):
    await backend.apply(Changeset(writes={("Stock", "a"): EntityWrite(freeze({"n": 5}), None)}))
    first, second = UnitOfWork(backend), UnitOfWork(backend)
    for uow in (first, second):
        stock = await uow.get("Stock", "a")
        await uow.put("Stock", "a", {"n": stock["n"] - 1})
        uow.add_event(event(1))
    await first.commit()
    with pytest.raises(Conflict, match="Stock 'a'"):
        await second.commit()
    assert (await backend.read_entity("Stock", "a")).record == {"n": 4}
    assert await backend.count_events() == 1


async def test_creating_what_was_read_as_absent_conflicts_if_someone_created_it(backend):
    first, second = UnitOfWork(backend), UnitOfWork(backend)
    for uow, n in ((first, 1), (second, 2)):
        assert await uow.get("Customer", "c1") is None
        await uow.put("Customer", "c1", {"n": n})
    await first.commit()
    with pytest.raises(Conflict):
        await second.commit()
    assert (await backend.read_entity("Customer", "c1")).record == {"n": 1}


async def test_deletes_check_versions_too(backend):
    await backend.apply(Changeset(writes={("T", "k"): EntityWrite(freeze({"v": 1}), None)}))
    stale = UnitOfWork(backend)
    assert await stale.delete("T", "k") is True
    fresh = UnitOfWork(backend)
    await fresh.put("T", "k", {**(await fresh.get("T", "k")), "v": 2})
    await fresh.commit()
    with pytest.raises(Conflict):
        await stale.commit()
    ok = UnitOfWork(backend)
    await ok.delete("T", "k")
    await ok.commit()
    assert await backend.read_entity("T", "k") is None


async def test_apply_many_keeps_going_past_a_conflict(backend):
    await backend.apply(Changeset(writes={("T", "k"): EntityWrite(freeze({"v": 1}), None)}))
    results = await backend.apply_many([
        Changeset(writes={("T", "a"): EntityWrite(freeze({"v": 1}), None)}),
        Changeset(writes={("T", "k"): EntityWrite(freeze({"v": 9}), 7)}, events=[event(1)]),
        Changeset(writes={("T", "b"): EntityWrite(freeze({"v": 1}), 0)}),
    ])  # fmt: skip
    assert [r is None for r in results] == [True, False, True]
    assert sorted(await backend.entities("T")) == ["a", "b", "k"]
    assert await backend.count_events() == 0


async def entity_pages(backend, entity, where, size):
    """Every record of an entity list, page by page, following the cursor (the last key of each page)."""
    found, after = [], None
    while True:
        page = await backend.list_entities(entity, where, after=after, limit=size)
        found.extend(page)
        if len(page) < size:
            return found
        after = page[-1].key


async def test_entity_records_are_listed_in_key_order_and_paged_by_keyset(backend):
    keys = [f"k{n:02}" for n in (7, 3, 11, 0, 9, 1, 4, 10, 2, 8, 5, 6)]
    writes = {("Company", key): EntityWrite(freeze({"domain": key, "n": int(key[1:])}), None) for key in keys}
    writes[("Person", "k05")] = EntityWrite(freeze({"domain": "k05"}), None)  # another entity, the same key
    await backend.apply(Changeset(writes=writes))
    await backend.apply(Changeset(writes={("Company", "k04"): EntityWrite(freeze({"domain": "k04", "n": 40}), None)}))
    in_order = sorted(keys)
    for size in (1, 5, 12, 13):
        assert [r.key for r in await entity_pages(backend, "Company", {}, size)] == in_order
    [first] = await backend.list_entities("Company", limit=1)
    assert first == ("k00", {"domain": "k00", "n": 0}, 1)
    assert [(r.record["n"], r.version) for r in await backend.list_entities("Company", after="k03", limit=1)] == [
        (40, 2)
    ]
    assert await backend.list_entities("Company", after="k11") == []
    assert await backend.list_entities("Nobody") == []


async def test_entity_field_filters_compare_the_text_of_top_level_values(backend):
    records = {
        "a": {"status": "active", "tier": 2, "vip": True, "price": Decimal("19.90"), "seen": NOW},
        "b": {"status": "active", "tier": "2", "vip": False, "price": Decimal("19.9"), "day": NOW.date()},
        "c": {"status": "closed", "tier": 3, "vip": None, "score": 2.5, "tags": ["active"], "nested": {"tier": 2}},
        "d": {"status": {"$decimal": "abc", "other": 1}, "tier": -2},
    }
    writes = {("Account", key): EntityWrite(freeze(data), None) for key, data in records.items()}
    await backend.apply(Changeset(writes=writes))
    cases = {
        (("status", "active"),): ["a", "b"],
        (("status", "active"), ("tier", "2")): ["a", "b"],  # an integer and a string of the same text
        (("tier", "-2"),): ["d"],
        (("vip", "true"),): ["a"],
        (("vip", "false"),): ["b"],
        (("price", "19.90"),): ["a"],  # a decimal as it is stored: 19.9 is another text
        (("seen", NOW.isoformat()),): ["a"],
        (("day", NOW.date().isoformat()),): ["b"],
        (("vip", "null"),): [],  # null, floats, lists and objects match nothing
        (("vip", ""),): [],
        (("score", "2.5"),): [],
        (("tags", "active"),): [],
        (("tags", '["active"]'),): [],
        (("nested", '{"tier": 2}'),): [],
        (("status", "abc"),): [],
        (("missing", "active"),): [],
        (("status", "Active"),): [],
        (("status", "active"), ("tier", "3")): [],
    }
    for where, expected in cases.items():
        assert [r.key for r in await entity_pages(backend, "Account", dict(where), 1)] == expected, where


# -- events, runs, journal ---------------------------------------------------------------------


async def test_events_round_trip_exactly_and_chain_by_correlation(backend):
    await backend.apply(Changeset(events=[event(0, "c1"), event(1, "c1"), event(2, "c2")]))
    got = await backend.get_event("0000-1")
    assert got == event(1, "c1")
    assert isinstance(got.data["Total"], Decimal) and got.data["When"] == NOW
    with pytest.raises(TypeError):
        got.data["Total"] = 1
    assert [e.id for e in await backend.event_chain("c1")] == ["0000-0", "0000-1"]
    assert await backend.get_event("nope") is None


async def test_events_are_read_many_at_once_those_that_exist(backend):
    await backend.apply(Changeset(events=[event(0, "c1"), event(1, "c1"), event(2, "c2")]))
    got = await backend.get_events(["0000-2", "nope", "0000-0"])
    assert sorted(got) == [event(0, "c1"), event(2, "c2")]
    assert await backend.get_events([]) == []


def caused(n: int, correlation: str, depth: int = 1) -> EventInstance:
    return event(n, correlation)._replace(id=f"{correlation}-{n}", depth=depth)


async def test_the_events_a_root_caused_are_counted_as_they_commit_and_only_then(backend):
    await backend.apply(Changeset(events=[caused(0, "c1", depth=0), caused(1, "c1"), caused(2, "c1", depth=2)]))
    # a batch that commits whole, and one of whose changesets is refused: its events count for nothing
    whole = [Changeset(events=[caused(7, "c2")]), Changeset(events=[caused(8, "c2")])]
    assert await backend.apply_many(whole) == [None, None]
    results = await backend.apply_many([
        Changeset(events=[caused(3, "c1"), caused(4, "c2")]),
        Changeset(writes={("T", "k"): EntityWrite(freeze({"v": 9}), 7)}, events=[caused(5, "c1")]),
        Changeset(events=[caused(6, "c2", depth=3)]),
    ])  # fmt: skip
    assert [r is None for r in results] == [True, False, True]
    # the root event itself (depth 0) is not one it caused
    assert (await backend.chain_events("c1"), await backend.chain_events("c2")) == (3, 4)
    assert await backend.chain_events("c3") == 0


async def test_runs_round_trip_and_are_found_by_event_message_and_parent(backend):
    await backend.apply(Changeset(runs=[run("r1", event_id="e1"), run("r2", message_id="m1", parent="r1")]))
    await backend.record_runs([run("r3", event_id="e1")])
    assert await backend.get_run("r1") == run("r1", event_id="e1")
    assert [r.id for r in await backend.runs_for_event("e1")] == ["r1", "r3"]
    assert [r.id for r in await backend.runs_for_message("m1")] == ["r2"]
    assert [r.id for r in await backend.child_runs("r1")] == ["r2"]


async def test_a_bounded_run_round_trips_with_its_markers(backend):
    steps = [run("x").steps[0]._replace(key=f"s{n}") for n in range(30)]
    big = {"text": "\x01" * 100}  # 100 characters, 611 bytes of JSON (each escaped as \u0001)
    steps[29] = steps[29]._replace(output=freeze(big))
    bounded = run("r1")._replace(
        steps=bounded_steps(steps, RuntimeLimits(max_trace_steps=10, max_trace_value_bytes=500))
    )
    await backend.record_runs([bounded, retried_attempt(bounded._replace(id="r2"))])

    stored = await backend.get_run("r1")
    assert stored == bounded and stored.steps_cut == 21
    assert [s.status for s in stored.steps].count(StepStatus.CUT) == 1
    assert stored.steps[-1].output == {"$cut": "value", "bytes": len(encode(big)), "head": encode(big)[:200]}
    retried = await backend.get_run("r2")
    assert retried.steps == (steps_marker("", 30, "retried attempt"),) and retried.steps_cut == 30


async def pages(list_page, where, size):
    """Every item of a list, page by page, following the cursor (the last id of each page)."""
    found, before = [], None
    while True:
        page = await list_page(where, before=before, limit=size)
        found.extend(page)
        if len(page) < size:
            return found
        before = page[-1].id


async def test_events_list_newest_first_filtered_and_paged_by_keyset(backend):
    made = []
    for n in range(12):
        instance = event(n, correlation=f"c{n % 2}")._replace(
            id=new_id(), type="OrderPlaced" if n % 3 else "OrderShipped", source=f"s{n % 4}",
            time=NOW + dt.timedelta(minutes=n),
        )  # fmt: skip
        made.append(instance)
    await backend.apply(Changeset(events=made))
    newest_first = made[::-1]
    assert [e.id for e in await backend.list_events(limit=100)] == [e.id for e in newest_first]
    for size in (1, 5, 12, 13):
        assert [e.id for e in await pages(backend.list_events, EventFilter(), size)] == [e.id for e in newest_first]
    cases = {
        EventFilter(type="OrderShipped"): lambda e: e.type == "OrderShipped",
        EventFilter(source="s1", correlation_id="c1"): lambda e: e.source == "s1",
        EventFilter(correlation_id="c0"): lambda e: e.correlation_id == "c0",
        # a time zone other than UTC means the same instant
        EventFilter(since=(NOW + dt.timedelta(minutes=3)).astimezone(dt.timezone(dt.timedelta(hours=5)))): (
            lambda e: e.time >= NOW + dt.timedelta(minutes=3)
        ),
        EventFilter(since=NOW + dt.timedelta(minutes=2), until=NOW + dt.timedelta(minutes=5)): (
            lambda e: NOW + dt.timedelta(minutes=2) <= e.time < NOW + dt.timedelta(minutes=5)
        ),
        EventFilter(type="NoSuchType"): lambda e: False,
    }
    for where, wanted in cases.items():
        expected = [e.id for e in newest_first if wanted(e)]
        assert [e.id for e in await pages(backend.list_events, where, 2)] == expected, where


async def test_runs_list_newest_first_filtered_and_paged_by_keyset(backend):
    made = [
        run(new_id())._replace(
            flow=f"F{n % 3}",
            handler=f"h{n % 2}" if n % 5 else None,
            status=RunStatus.FAILED if n % 4 == 0 else RunStatus.SUCCEEDED,
            trigger=Trigger.MESSAGE if n % 5 == 0 else Trigger.HANDLER,
        )
        for n in range(10)
    ]
    await backend.apply(Changeset(runs=made[:6]))
    await backend.record_runs(made[6:])
    newest_first = made[::-1]
    assert [r.id for r in await pages(backend.list_runs, RunFilter(), 3)] == [r.id for r in newest_first]
    cases = {
        RunFilter(flow="F1"): lambda r: r.flow == "F1",
        RunFilter(handler="h1", status=RunStatus.SUCCEEDED): (
            lambda r: r.handler == "h1" and r.status is RunStatus.SUCCEEDED
        ),
        RunFilter(status=RunStatus.FAILED): lambda r: r.status is RunStatus.FAILED,
        RunFilter(trigger=Trigger.MESSAGE): lambda r: r.trigger is Trigger.MESSAGE,
    }
    for where, wanted in cases.items():
        expected = [r.id for r in newest_first if wanted(r)]
        assert expected, where
        assert [r.id for r in await pages(backend.list_runs, where, 2)] == expected, where
    assert await backend.list_runs(before=newest_first[-1].id) == []


async def test_the_step_journal_answers_whether_a_step_already_ran(backend):
    assert await backend.journaled_output("m1/F", "send") == (False, None)
    await backend.journal_step("m1/F", "send", {"status": 201, "price": Decimal("1.10")})
    assert await backend.journaled_output("m1/F", "send") == (True, {"status": 201, "price": Decimal("1.10")})


# -- queues ------------------------------------------------------------------------------------


async def test_messages_are_claimed_oldest_first_and_leased(backend):
    ids = await backend.send([job(1), job(2), job(3)])
    claimed = await claim(backend, limit=2)
    assert [m.id for m in claimed] == ids[:2]
    assert all(m.state is MessageState.LEASED and m.lease_owner == "w1" for m in claimed)
    assert [m.id for m in await claim(backend)] == ids[2:]
    assert await claim(backend) == []


async def test_a_group_waits_for_its_head_while_other_groups_go_on(backend):
    a1, b1, a2, free, b2 = await backend.send([job(1, "a"), job(2, "b"), job(3, "a"), job(4), job(5, "b")])
    assert [m.id for m in await claim(backend)] == [a1, b1, free]
    await ack(backend, await backend.get_message(a1))
    assert [m.id for m in await claim(backend)] == [a2]
    await ack(backend, await backend.get_message(b1))
    assert [m.id for m in await claim(backend)] == [b2]


async def test_a_retry_waits_and_holds_its_group(backend):
    first, _second = await backend.send([job(1, "g"), job(2, "g")])
    [message] = await claim(backend)
    error = AttemptError(1, "boom", NOW, 3)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
    await backend.apply(Changeset(retries=[Retry(message.id, "w1", error, soon)]))
    assert await claim(backend) == []  # neither the retrying head nor the next of its group
    await asyncio.sleep(0.35)
    [again] = await claim(backend)
    assert again.id == first and again.attempts == 1 and again.errors == (error,)


async def test_a_parked_dead_letter_lets_its_group_go_on_and_a_blocking_one_holds_it(backend):
    p1, p2, b1, b2 = await backend.send([job(1, "parked"), job(2, "parked"), job(3, "blocked"), job(4, "blocked")])
    claimed = {m.id: m for m in await claim(backend)}
    now = dt.datetime.now(dt.UTC)
    await backend.apply(Changeset(retries=[
        Retry(p1, "w1", AttemptError(1, "bad", now), now, dead=True),
        Retry(b1, "w1", AttemptError(1, "bad", now), now, dead=True, blocking=True),
    ]))  # fmt: skip
    assert set(claimed) == {p1, b1}
    assert [m.id for m in await claim(backend)] == [p2]
    dead = await backend.dead_letters()
    assert [(m.id, m.blocking, m.errors[-1].error) for m in dead] == [(p1, False, "bad"), (b1, True, "bad")]
    assert [m.id for m in await backend.dead_letters(DeadLetterFilter(group_key="blocked"))] == [b1]
    assert [m.id for m in await backend.dead_letters(DeadLetterFilter(name="h", queue=OUT))] == [p1, b1]
    assert [m.id for m in await backend.dead_letters(limit=1)] == [p1]  # pages: oldest first, after a cursor
    assert [m.id for m in await backend.dead_letters(after=p1, limit=1)] == [b1]
    assert await backend.dead_letters(after=b1) == []
    assert await backend.redrive([b1], config_version=7) == 1
    [redriven] = await claim(backend)
    assert (redriven.id, redriven.attempts, redriven.config_version) == (b1, 0, 7)
    await ack(backend, redriven)
    assert [m.id for m in await claim(backend)] == [b2]


async def test_duplicates_within_the_window_are_accepted_and_dropped(backend):
    first = await backend.send([job(1, dedup="order-1")])
    again = await backend.send([job(1, dedup="order-1"), job(2, dedup="order-2")])
    assert again[0] == first[0] and again[1] != first[0]
    twice_in_one_send = await backend.send([job(3, dedup="order-3"), job(3, dedup="order-3")])
    assert twice_in_one_send[0] == twice_in_one_send[1]
    assert len(await claim(backend)) == 3
    await asyncio.sleep(0.55)  # the window (0.5 s in these tests) has passed
    later = await backend.send([job(1, dedup="order-1")])
    assert later[0] != first[0]


async def test_a_dedup_id_drops_duplicates_in_its_own_queue_only(backend):
    inbound, outbound = await backend.send([source_message(1, dedup="order-1"), job(1, dedup="order-1")])
    assert inbound != outbound
    assert await backend.send([job(2, dedup="order-1"), source_message(2, dedup="order-1")]) == [outbound, inbound]
    assert len(await claim(backend)) == 2


async def test_a_changeset_queues_its_messages_with_the_same_de_duplication(backend):
    [first] = await backend.send([job(1, dedup="order-1")])
    await backend.apply(Changeset(messages=[job(1, dedup="order-1"), job(2, dedup="order-2"), job(3)]))
    assert [m.body["event_id"] for m in await claim(backend)] == ["e1", "e2", "e3"]
    assert (await backend.get_message(first)).body["event_id"] == "e1"


def source_message(n: int, group: str | None = None, dedup: str | None = None) -> OutgoingMessage:
    body = {"source": "shop", "type": "order.placd", "data": {"n": n}}
    return OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, body, group, dedup)


async def unmatched(backend, message, owner="w1"):
    await backend.apply(Changeset(acks=[Ack(message.id, owner, MessageState.UNMATCHED)]))


async def test_an_unmatched_message_is_finished_as_a_done_one_is_and_its_group_goes_on(backend):
    first, second, third = await backend.send([source_message(1, "g"), source_message(2, "g"), job(3)])
    [head, other] = await claim(backend)
    assert (head.id, other.id) == (first, third)
    await unmatched(backend, head)
    assert (await backend.get_message(first)).state is MessageState.UNMATCHED
    [after] = await claim(backend)
    assert after.id == second
    await ack(backend, after)
    assert await backend.queue_depth() == {
        (QueueName.INBOUND, MessageState.UNMATCHED): 1,
        (QueueName.INBOUND, MessageState.DONE): 1,
        (OUT, MessageState.LEASED): 1,
    }
    assert await backend.dead_letters() == []
    assert await backend.redrive([first]) == 0  # only dead letters are redriven


async def test_the_dedup_id_of_an_unmatched_message_still_drops_its_duplicates(backend):
    [first] = await backend.send([source_message(1, dedup="order-1")])
    [message] = await claim(backend)
    await unmatched(backend, message)
    assert await backend.send([source_message(1, dedup="order-1")]) == [first]
    assert await claim(backend) == []


async def test_an_unmatched_acknowledgement_needs_the_lease_as_any_other(backend):
    [sent] = await backend.send([source_message(1)])
    [message] = await claim(backend, owner="slow")
    with pytest.raises(Conflict, match="lease"):
        await unmatched(backend, message, owner="other")
    assert (await backend.get_message(sent)).state is MessageState.LEASED


async def test_messages_with_and_without_dedup_ids_keep_the_order_they_were_sent_in(backend):
    sent = await backend.send([job(1), job(2, dedup="d2"), job(3), job(4), job(5, dedup="d5"), job(6)])
    assert [m.id for m in await claim(backend)] == sent


async def test_an_expired_lease_is_redelivered_and_the_old_owner_cannot_ack(backend):
    [sent] = await backend.send([job(1)])
    [first] = await claim(backend, owner="slow", lease_s=0.1)
    assert await claim(backend, owner="other") == []
    await asyncio.sleep(0.15)
    [second] = await claim(backend, owner="other")
    assert second.id == sent == first.id and second.lease_owner == "other"
    with pytest.raises(Conflict, match="lease"):
        await backend.apply(Changeset(acks=[Ack(sent, "slow")], writes={("T", "x"): EntityWrite(freeze({}), None)}))
    assert await backend.read_entity("T", "x") is None
    await ack(backend, second, owner="other")
    assert (await backend.get_message(sent)).state is MessageState.DONE


async def test_a_heartbeat_keeps_the_lease(backend):
    [sent] = await backend.send([job(1)])
    await claim(backend, lease_s=0.1)
    await asyncio.sleep(0.06)
    assert await backend.extend_leases([sent], owner="w1", lease_s=0.3) == 1
    await asyncio.sleep(0.08)
    assert await claim(backend, owner="other") == []
    assert await backend.extend_leases([sent], owner="other", lease_s=1) == 0


async def test_released_messages_come_back_without_counting_an_attempt(backend):
    await backend.send([job(1), job(2)])
    claimed = await claim(backend)
    assert await backend.release([m.id for m in claimed], owner="w1") == 2
    again = await claim(backend)
    assert [m.id for m in again] == [m.id for m in claimed] and all(m.attempts == 0 for m in again)


async def test_a_message_keeps_the_trace_context_it_was_sent_in_through_retries_and_redelivery(backend):
    context = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v"}'
    traced, untraced = await backend.send([job(1)._replace(trace_context=context), job(2)])
    claimed = {m.id: m for m in await claim(backend)}
    assert (claimed[traced].trace_context, claimed[untraced].trace_context) == (context, None)
    error = AttemptError(1, "boom", dt.datetime.now(dt.UTC))
    retry = Retry(traced, "w1", error, dt.datetime.now(dt.UTC), dead=False)
    await backend.apply(Changeset(retries=[retry]))
    [again] = [m for m in await claim(backend, owner="w2") if m.id == traced]
    assert (again.attempts, again.trace_context) == (1, context)
    assert (await backend.get_message(traced)).trace_context == context


async def test_queue_depth_counts_by_queue_and_state(backend):
    await backend.send([job(1), job(2), OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"source": "s"})])
    [m] = await backend.claim([OUT], limit=1, owner="w1", lease_s=30)
    await ack(backend, m)
    assert await backend.queue_depth() == {
        (OUT, MessageState.DONE): 1,
        (OUT, MessageState.READY): 1,
        (QueueName.INBOUND, MessageState.READY): 1,
    }


async def test_queued_messages_commit_with_the_unit_of_work_or_not_at_all(backend):
    uow = UnitOfWork(backend)
    uow.enqueue(job(1))
    await uow.rollback()
    assert await claim(backend) == []
    uow = UnitOfWork(backend)
    uow.enqueue(job(2))
    await uow.commit()
    assert len(await claim(backend)) == 1


# -- config versions ---------------------------------------------------------------------------


def version(text: str) -> ConfigVersion:
    return ConfigVersion(
        number=0, text=text, file="flowbus.yaml", content_hash=f"h-{text}", created_at=NOW, summary="s"
    )


async def test_versions_are_numbered_stored_and_activated_by_the_dispatcher(backend):
    manifest = Manifest(
        version=0, routes={("shop", "order"): ("A", "B")}, handlers={"E": (("h1", "sync"), ("h2", "async"))}
    )
    one = await backend.add_version(version("one"), manifest)
    two = await backend.add_version(version("two"), manifest)
    assert (one.number, two.number) == (1, 2)
    assert await backend.active_version() is None  # stored, not yet projected
    assert await backend.project_versions() == [1, 2]
    assert await backend.project_versions() == []
    assert await backend.active_version() == 2
    assert await backend.manifest() == manifest._replace(version=2)
    assert [v.text for v in await backend.versions()] == ["one", "two"]
    assert await backend.get_version(1) == one and await backend.get_version(9) is None


async def test_a_draft_is_kept_per_project(backend):
    assert await backend.get_draft() is None
    await backend.save_draft("flows: []", file="flowbus.yaml")
    assert await backend.get_draft() == ("flows: []", "flowbus.yaml")


async def test_a_run_that_read_a_refused_write_of_its_batch_is_refused_too(backend):
    from flowbus.runtime.unit_of_work import Overlay

    await backend.apply(Changeset(writes={("Day", "d"): EntityWrite(freeze({"n": 0}), None)}))
    overlay = Overlay()
    first = UnitOfWork(backend, overlay=overlay)
    await first.put("Day", "d", {"n": (await first.get("Day", "d"))["n"] + 1})
    overlay.absorb(first.changeset, first.read_versions)
    second = UnitOfWork(backend, overlay=overlay)
    assert (await second.get("Day", "d")) == {"n": 1}  # reads the batch's pending write
    await second.put("Day", "d", {"n": 2})
    # meanwhile another worker commits its own increment: same version number as `first` would make
    other = UnitOfWork(backend)
    await other.put("Day", "d", {"n": (await other.get("Day", "d"))["n"] + 100})
    await other.commit()
    results = await backend.apply_many([first.changeset, second.changeset])
    assert [r is not None for r in results] == [True, True]
    assert (await backend.read_entity("Day", "d")).record == {"n": 100}


async def test_a_batch_writes_its_changesets_in_order_whatever_their_shape(backend):
    # a blind write, then a blind write of the same key by a changeset that also queues a message
    first = Changeset(writes={("Order", "1"): EntityWrite(freeze({"status": "first"}), None)})
    second = Changeset(writes={("Order", "1"): EntityWrite(freeze({"status": "second"}), None)}, messages=[job(1)])
    third = Changeset(writes={("Order", "2"): EntityWrite(freeze({"status": "third"}), None)})
    assert await backend.apply_many([first, second, third]) == [None, None, None]
    assert (await backend.read_entity("Order", "1")).record == {"status": "second"}  # as one by one
    assert (await backend.read_entity("Order", "2")).record == {"status": "third"}


# -- API keys ----------------------------------------------------------------------------------


async def test_api_keys_are_kept_hashed_found_by_id_and_revoked(backend):
    from flowbus.keys import Scope, new_key, parse_token, verifies

    key, token = new_key("shop", "ci", (Scope.INGEST, Scope.READ))
    await backend.add_key(key)
    key_id, secret = parse_token(token)
    stored = await backend.get_key(key_id)
    assert stored.scopes == (Scope.INGEST, Scope.READ) and stored.name == "ci"
    assert secret not in stored.secret_hash and verifies(stored, secret)
    assert not verifies(stored, secret + "x")
    assert [k.id for k in await backend.list_keys()] == [key_id]
    assert await backend.revoke_key(key_id) is True
    assert await backend.revoke_key(key_id) is False
    revoked = await backend.get_key(key_id)
    assert revoked.revoked_at is not None and not verifies(revoked, secret)
    assert await backend.get_key("nope") is None


async def test_a_manifest_keeps_its_sources_and_their_event_type_paths(backend):
    with_sources = Manifest(
        version=0, routes={("shop", "order"): ("A",)}, handlers={"E": (("h1", "sync"),)},
        sources={"shop": "$.kind", "plain": None},
    )  # fmt: skip
    await backend.add_version(version("one"), with_sources)
    await backend.project_versions()
    assert await backend.manifest() == with_sources._replace(version=1)
    assert (await backend.manifest()).handlers == {"E": (("h1", "sync"),)}  # the sources are not an event


async def test_run_points_are_the_runs_of_a_time_window_newest_first_and_bounded(backend):
    old, hour_ago = NOW - dt.timedelta(days=2), NOW - dt.timedelta(hours=1)
    ids = [floor_id(t).replace("-8000-", f"-{8000 + n}-") for n, t in enumerate((old, hour_ago, NOW, NOW))]
    failed = run(ids[3])._replace(status=RunStatus.FAILED, duration_s=0.5)
    await backend.apply(Changeset(runs=[run(ids[0]), run(ids[1]), run(ids[2]), failed]))
    points = await backend.run_points(hour_ago, limit=10)
    assert points == [
        RunPoint(ids[3], RunStatus.FAILED, 0.5),
        *(RunPoint(i, RunStatus.SUCCEEDED, 0.002) for i in ids[2:0:-1]),
    ]
    assert [p.id for p in await backend.run_points(hour_ago, limit=2)] == [ids[3], ids[2]]
    assert await backend.run_points(NOW + dt.timedelta(seconds=1), limit=10) == []
    assert time_of(ids[1]) == hour_ago


async def test_queue_stats_count_open_and_dead_messages_with_the_oldest_and_leave_done_ones_out(backend):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    first, _second, _third = await backend.send([job(1, "g"), job(2), job(3)])
    await backend.send([OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"source": "s"})])
    claimed = {m.id: m for m in await backend.claim([OUT], limit=3, owner="w1", lease_s=30)}
    now = dt.datetime.now(dt.UTC)
    await backend.apply(Changeset(retries=[Retry(first, "w1", AttemptError(1, "bad", now), now, dead=True)]))
    done, unmatched = (m for i, m in claimed.items() if i != first)
    await ack(backend, done)
    await backend.apply(Changeset(acks=[Ack(unmatched.id, "w1", MessageState.UNMATCHED)]))  # finished too
    await backend.send([job(4)])
    stats = {(s.queue, s.state): s for s in await backend.queue_stats()}
    assert {k: s.messages for k, s in stats.items()} == {
        (OUT, MessageState.DEAD): 1,
        (OUT, MessageState.READY): 1,
        (QueueName.INBOUND, MessageState.READY): 1,
    }
    assert all(before <= s.oldest <= dt.datetime.now(dt.UTC) for s in stats.values())


async def test_group_stats_list_groups_with_open_messages_blocked_ones_first_with_their_blocker(backend):
    b1, _b2, _b3, _p1, p2, _free = await backend.send(
        [job(1, "blocked"), job(2, "blocked"), job(3, "blocked"), job(4, "parked"), job(5, "parked"), job(6)]
    )
    await asyncio.sleep(0.01)
    await backend.send([job(7, "late")])  # sent later: its group's oldest message is younger
    claimed = {m.id: m for m in await claim(backend)}
    now = dt.datetime.now(dt.UTC)
    parked = next(i for i, m in claimed.items() if m.group_key == "parked")
    await backend.apply(Changeset(retries=[
        Retry(b1, "w1", AttemptError(1, "bad", now), now, dead=True, blocking=True),
        Retry(parked, "w1", AttemptError(1, "bad", now), now, dead=True),
    ]))  # fmt: skip
    stats = await backend.group_stats(limit=10)
    assert [(g.group_key, g.messages, g.blocked_by) for g in stats] == [
        ("blocked", 2, b1),
        ("parked", 1, None),
        ("late", 1, None),
    ]
    assert stats[1].oldest <= stats[2].oldest
    assert [g.group_key for g in await backend.group_stats(limit=1)] == ["blocked"]
    [done] = [m for m in await claim(backend) if m.id == p2]
    await ack(backend, done)
    assert "parked" not in [g.group_key for g in await backend.group_stats(limit=10)]


async def test_runs_filter_by_config_version_and_by_the_source_and_event_type_they_ran_for(backend):
    inbound = [
        OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"source": s, "type": t, "data": {}})
        for s, t in (("shopify", "order"), ("shopify", "refund"), ("stripe", "order"))
    ]
    messages = await backend.send(inbound)
    placed = event(1)._replace(id=new_id(), type="OrderPlaced", source="shop-flows")
    await backend.apply(Changeset(events=[placed]))
    runs = [
        run(new_id(), message_id=m)._replace(trigger=Trigger.MESSAGE, config_version=v)
        for m, v in zip(messages, (1, 2, 2), strict=True)
    ]
    handled = run(new_id(), event_id=placed.id, message_id=new_id())
    await backend.apply(Changeset(runs=[*runs, handled]))

    async def listed(**where) -> list[str]:
        return [r.id for r in await backend.list_runs(RunFilter(**where))]

    assert await listed(source="shopify") == [runs[1].id, runs[0].id]
    assert await listed(event_type="order") == [runs[2].id, runs[0].id]
    assert await listed(source="shopify", event_type="refund") == [runs[1].id]
    assert await listed(event_type="OrderPlaced") == [handled.id]
    assert await listed(source="shop-flows") == [handled.id]
    assert await listed(source="nowhere") == []
    assert await listed(config_version=2) == [runs[2].id, runs[1].id]
    assert await listed(config_version=3, trigger=Trigger.HANDLER) == [handled.id]


def delayed(n: int, seconds: float, group: str | None = None, dedup: str | None = None) -> OutgoingMessage:
    return job(n, group, dedup)._replace(not_before=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


async def test_a_delayed_message_is_invisible_until_its_time_and_shown_scheduled(backend):
    later, now_ = await backend.send([delayed(1, 0.4), job(2)])
    asked = (await backend.get_message(later)).available_at
    assert [m.id for m in await claim(backend)] == [now_]
    assert (await backend.get_message(later)).to_dict()["state"] == "scheduled"
    assert (await backend.get_message(now_)).to_dict()["state"] == "leased"
    assert (await backend.queue_depth()).get((OUT, MessageState.SCHEDULED)) == 1
    while not (claimed := await claim(backend)):
        await asyncio.sleep(0.05)
    assert [m.id for m in claimed] == [later]
    assert dt.datetime.now(dt.UTC) >= asked
    assert (await backend.queue_depth()).get((OUT, MessageState.SCHEDULED)) is None


async def test_a_delayed_message_holds_its_group_and_is_deduplicated(backend):
    head, behind, other = await backend.send([delayed(1, 0.3, "g", "d-1"), job(2, "g"), job(3, "h")])
    assert await backend.send([job(1, "g", "d-1")]) == [head]  # the same dedup id: the delayed one
    assert [m.id for m in await claim(backend)] == [other]  # the group waits for its delayed head
    while not (claimed := await claim(backend)):
        await asyncio.sleep(0.05)
    assert [m.id for m in claimed] == [head]
    await ack(backend, claimed[0])
    assert [m.id for m in await claim(backend)] == [behind]


async def test_a_schedule_tick_moves_forward_once_and_queues_its_message_with_it(backend):
    tick = dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.UTC)
    assert await backend.schedule_ticks() == {}
    assert await backend.advance_schedule("morning", tick, [job(1)]) is True
    assert await backend.advance_schedule("morning", tick, [job(2)]) is False  # another worker, same tick
    assert await backend.advance_schedule("morning", tick - dt.timedelta(days=1), [job(3)]) is False
    assert await backend.advance_schedule("evening", tick, []) is True  # skipped past: nothing queued
    assert await backend.schedule_ticks() == {"morning": tick, "evening": tick}
    assert [m.body["event_id"] for m in await claim(backend)] == ["e1"]
    next_day = tick + dt.timedelta(days=1)
    assert await backend.advance_schedule("morning", next_day, [job(4)]) is True
    assert (await backend.schedule_ticks())["morning"] == next_day


def siblings(backend, n: int) -> list:
    """``n`` backends on the backend's own store, each with a connection of its own, as workers
    in other processes have (the memory backend has no other way in: itself)."""
    kind = type(backend).__name__
    if kind == "PostgresBackend":
        return [type(backend)(backend.url, backend.project) for _ in range(n)]
    if kind == "SqliteBackend":
        return [type(backend)(backend.path, backend.project) for _ in range(n)]
    return [backend] * n


async def test_concurrent_workers_fire_a_tick_once(backend):
    tick = dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.UTC)
    workers = siblings(backend, 5)
    try:
        fired = await asyncio.gather(*(w.advance_schedule("s", tick, [job(n)]) for n, w in enumerate(workers)))
    finally:
        for other in {id(w): w for w in workers if w is not backend}.values():
            await other.close()
    assert sorted(fired) == [False] * 4 + [True]
    assert len(await claim(backend)) == 1
