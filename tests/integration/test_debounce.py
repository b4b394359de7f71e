"""Debounce on every backend (memory, SQLite, PostgreSQL): a burst of events with one key runs the
flow once, with the last event, no earlier than ``period`` after it and no later than ``max_wait``
after the first; the state ``debounced`` in the message, the trace, the API and /metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import textwrap
import time

from flowbus.api.dashboard.timeline import timeline
from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.keys import Scope
from flowbus.publishing import active_config
from flowbus.queue import Debounce, MessageKind, MessageState, OutgoingMessage, QueueName
from flowbus.runtime.records import RunStatus
from flowbus.trace import render, to_data, trace_message, trace_run
from flowbus.worker import Worker, WorkerSettings

CONFIG = """
project: {{name: shop}}
events:
  - name: CustomerChanged
    properties:
      CustomerId: {{type: String, required: true}}
      Seq: {{type: Integer, required: true}}
flows:
  - name: Sync
    inputs: {{CustomerId: {{type: String, required: true}}, Seq: {{type: Integer, required: true}}}}
    steps: [{{id: out, action: output, values: {{customer: "=inputs.CustomerId", seq: "=inputs.Seq"}}}}]
handlers:
  - name: sync
    event: CustomerChanged
    flow: Sync
    bindings: {{CustomerId: CustomerId, Seq: Seq}}
    debounce: {{period: {period}, key: "=event.data.CustomerId"{max_wait}}}
"""
OUT = QueueName.OUTBOUND


def config(period: str = "1s", max_wait: str | None = None) -> str:
    return CONFIG.format(period=period, max_wait=f", max_wait: {max_wait}" if max_wait else "")


def engine_on(backend, text: str | None = None) -> Engine:
    return Engine(load_config_text(textwrap.dedent(text or config())), backend=backend, config_version=1)


def changed(customer: str, seq: int) -> dict:
    return {"CustomerId": customer, "Seq": seq}


async def work_until(worker: Worker, runs_wanted: int, timeout_s: float = 30.0) -> list:
    """Claim what is due until ``runs_wanted`` runs happened (a debounced message is due only
    after its period: the loop waits it out)."""
    runs: list = []
    deadline = time.monotonic() + timeout_s
    while len(runs) < runs_wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(runs)} of {runs_wanted} runs after {timeout_s} s")
        runs += await worker.run_until_idle()
        await asyncio.sleep(0.05)
    return runs


async def burst(engine: Engine, customer: str, seqs: range, tasks: int = 4) -> None:
    """Publish ``seqs`` for ``customer`` from ``tasks`` concurrent tasks."""

    async def publisher(part: list[int]) -> None:
        for seq in part:
            await engine.publish("CustomerChanged", changed(customer, seq))

    parts = [list(seqs)[i::tasks] for i in range(tasks)]
    await asyncio.gather(*(publisher(part) for part in parts))


async def handler_messages(backend) -> list:
    depth = await backend.queue_depth()
    return [(state, n) for (queue, state), n in sorted(depth.items()) if queue is OUT]


async def test_a_burst_of_100_events_of_one_key_runs_once_with_the_last_no_earlier_than_its_period(backend):
    engine = engine_on(backend)
    await burst(engine, "c1", range(99))  # several publishers at once
    sent_last = time.time()
    last = await engine.publish("CustomerChanged", changed("c1", 99))
    assert await handler_messages(backend) == [(MessageState.DEBOUNCED, 1)]
    assert await backend.count_events() == 100  # every event is kept, the debounced ones too

    [run] = await work_until(Worker(engine, WorkerSettings(batch_size=8)), 1)
    assert run.status is RunStatus.SUCCEEDED
    assert (run.event_id, run.outputs) == (last.id, {"customer": "c1", "seq": 99})
    assert run.started_at.timestamp() >= sent_last + 1.0 - 0.001  # after a period of quiet
    message = await backend.get_message(run.message_id)
    assert (message.state, message.debounced, message.debounce_key) == (MessageState.DONE, 100, "sync/c1")
    assert await Worker(engine).run_until_idle() == []  # and never again


async def test_two_keys_make_two_bursts_and_two_runs(backend):
    engine = engine_on(backend)
    lasts = {}
    for seq in range(20):
        for customer in ("a", "b"):
            lasts[customer] = await engine.publish("CustomerChanged", changed(customer, seq))
    runs = await work_until(Worker(engine), 2)
    assert len(runs) == 2
    assert {r.outputs["customer"]: r.event_id for r in runs} == {c: e.id for c, e in lasts.items()}
    assert {(await backend.get_message(r.message_id)).debounced for r in runs} == {20}


async def test_an_event_after_the_burst_ran_starts_a_new_burst(backend):
    engine = engine_on(backend)
    await engine.publish("CustomerChanged", changed("c1", 1))
    [first] = await work_until(Worker(engine), 1)
    second = await engine.publish("CustomerChanged", changed("c1", 2))
    [run] = await work_until(Worker(engine), 1)
    assert run.message_id != first.message_id and run.event_id == second.id
    assert (await backend.get_message(run.message_id)).debounced == 1


async def test_a_burst_keeps_to_its_fifo_group(backend):
    """Events of one key in two FIFO groups make a burst each: folding the second group's event
    into the first group's burst would take it out of its group, where a later message would
    run before it."""
    engine = engine_on(backend, config(period="300ms"))
    sent = [
        await engine.send_event("CustomerChanged", changed("c1", seq), source="crm", group_key=group)
        for seq, group in enumerate(["g1", "g/2", "g1", "g/2"])
    ]
    runs = await work_until(Worker(engine), 2)  # the four events published, then their bursts run
    assert len(runs) == 2 and len(sent) == 4
    messages = sorted([await backend.get_message(run.message_id) for run in runs], key=lambda m: m.group_key)
    assert [(m.group_key, m.debounce_key, m.debounced) for m in messages] == [
        ("g/2", 'sync@"g/2"/c1', 2),
        ("g1", 'sync@"g1"/c1', 2),
    ]
    assert sorted(run.outputs["seq"] for run in runs) == [2, 3]  # each group's last event
    assert await Worker(engine).run_until_idle() == []


def job(n: int, key: str = "sync/c1", period_s: float = 60.0, max_wait_s: float | None = None) -> OutgoingMessage:
    body = {"handler": "sync", "event_id": f"e{n}"}
    return OutgoingMessage(OUT, MessageKind.HANDLER, body, debounce=Debounce(key, period_s, max_wait_s))


async def test_a_debounced_send_folds_into_its_burst_and_answers_the_burst_s_id(backend):
    [first] = await backend.send([job(1)])
    [second, other] = await backend.send([job(2), job(3, key="sync/c2")])
    [third] = await backend.send([job(4)])
    assert first == second == third != other
    message = await backend.get_message(first)
    assert (message.body, message.debounced, message.debounce_key) == (
        {"handler": "sync", "event_id": "e4"},
        3,
        "sync/c1",
    )
    assert message.state is MessageState.SCHEDULED and message.shown_state(dt.datetime.now(dt.UTC)) == "debounced"
    assert message.to_dict()["state"] == "debounced"
    assert message.available_at >= message.created_at + dt.timedelta(seconds=59)  # no earlier than its period
    assert await backend.queue_depth() == {(OUT, MessageState.DEBOUNCED): 2}
    assert await backend.claim([OUT], limit=10, owner="w", lease_s=30) == []  # not due


async def test_max_wait_bounds_how_late_a_burst_runs(backend):
    # period 60 s, max_wait 60 s: a later message cannot move the burst past the first one's deadline
    [burst_id] = await backend.send([job(1, max_wait_s=60.0)])
    await asyncio.sleep(0.05)
    await backend.send([job(2, max_wait_s=60.0)])
    message = await backend.get_message(burst_id)
    deadline = message.created_at + dt.timedelta(seconds=60)
    assert abs((message.available_at - deadline).total_seconds()) < 0.001  # the deadline, not 60 s after the second
    # without max_wait, the second message moves it on
    [unbounded] = await backend.send([job(1, key="sync/c2")])
    await asyncio.sleep(0.05)
    await backend.send([job(2, key="sync/c2")])
    message = await backend.get_message(unbounded)
    assert message.available_at >= message.created_at + dt.timedelta(seconds=60.04)


async def test_a_due_burst_is_claimed_once_and_the_next_message_of_its_key_starts_another(backend):
    [burst_id, same] = await backend.send([job(1, period_s=0.05), job(2, period_s=0.05)])
    assert same == burst_id
    await asyncio.sleep(0.1)
    [claimed] = await backend.claim([OUT], limit=10, owner="w", lease_s=30)
    assert (claimed.id, claimed.body["event_id"], claimed.debounced) == (burst_id, "e2", 2)
    [after] = await backend.send([job(3, period_s=0.05)])
    assert after != burst_id
    assert (await backend.get_message(burst_id)).body["event_id"] == "e2"  # the claimed one keeps its event
    assert (await backend.get_message(after)).debounced == 1


def plain(n: int, group: str) -> OutgoingMessage:
    return OutgoingMessage(OUT, MessageKind.HANDLER, {"handler": "other", "event_id": f"p{n}"}, group)


async def test_once_due_a_claim_makes_a_burst_ready_even_when_its_group_holds_it(backend):
    """Every backend alike: a due burst is made ready at the next claim, whether or not its FIFO
    group lets it be claimed then; a later message of its key starts a new burst."""
    await backend.send([plain(0, "g")])
    [head] = await backend.claim([OUT], limit=1, owner="w", lease_s=60)  # g is busy
    [burst_id] = await backend.send([job(1, period_s=0.05)._replace(group_key="g")])
    await asyncio.sleep(0.1)
    assert await backend.claim([OUT], limit=10, owner="w", lease_s=60) == []  # held by its group
    assert (await backend.get_message(burst_id)).state is MessageState.READY
    [after] = await backend.send([job(2, period_s=0.05)._replace(group_key="g")])
    assert after != burst_id
    assert (await backend.get_message(burst_id)).body["event_id"] == "e1"  # the ready one keeps its event
    assert (await backend.get_message(after)).debounced == 1
    assert await backend.queue_depth() == {
        (OUT, MessageState.LEASED): 1,
        (OUT, MessageState.READY): 1,
        (OUT, MessageState.DEBOUNCED): 1,
    }
    assert head.body["event_id"] == "p0"


async def test_the_memory_backend_forgets_a_burst_once_a_claim_made_it_ready():
    from flowbus.stores.memory import MemoryBackend

    backend = MemoryBackend("shop")
    for n in range(50):
        await backend.send([job(n, key=f"sync/c{n}", period_s=0.05, max_wait_s=1.0) for _ in range(2)])
    assert (len(backend._bursts), len(backend._deadlines)) == (50, 50)
    await asyncio.sleep(0.1)
    assert len(await backend.claim([OUT], limit=100, owner="w", lease_s=60)) == 50
    assert (backend._bursts, backend._deadlines, backend._waiting) == ({}, {}, [])


async def test_a_debounced_message_leaves_no_dedup_id_behind(backend):
    """A debounced message is never stored under a de-duplication id: one given to it is not
    remembered, so a plain message sent later with that id is queued."""
    [burst_id] = await backend.send([job(1)._replace(dedup_id="d1")])
    [plain_id] = await backend.send([plain(2, "g")._replace(dedup_id="d1")])
    assert plain_id != burst_id
    assert (await backend.get_message(plain_id)).body["event_id"] == "p2"


async def test_a_debounced_message_keeps_its_priority(backend):
    [burst_id] = await backend.send([job(1)._replace(priority=9)])
    await backend.send([job(2)._replace(priority=9)])  # folded into the burst
    assert (await backend.get_message(burst_id)).priority == 9


async def test_a_burst_that_never_goes_quiet_still_runs_every_max_wait(backend):
    """Events every 50 ms, period 0.4 s, max_wait 0.8 s, for 2.5 s: never a quiet period, yet the
    flow runs while they keep coming (each run no later than max_wait after its burst began)."""
    engine = engine_on(backend, config(period="400ms", max_wait="800ms"))
    worker = Worker(engine, WorkerSettings(batch_size=8, idle_poll_s=0.05, schedules=False, sweep=None))
    working = asyncio.create_task(worker.run())
    seq, started = 0, time.monotonic()
    while time.monotonic() - started < 2.5:
        await engine.publish("CustomerChanged", changed("c1", seq))
        seq += 1
        await asyncio.sleep(0.05)
    ran_while_busy = await backend.list_runs()
    worker.stop()
    await working
    assert len(ran_while_busy) >= 2  # without max_wait: none until the events stop
    messages = [await backend.get_message(run.message_id) for run in ran_while_busy]
    for message in messages:  # each burst became due no later than max_wait after its first event
        assert message.available_at <= message.created_at + dt.timedelta(seconds=0.8, milliseconds=1)
    assert max(message.debounced for message in messages) > 1


async def test_the_state_debounced_in_the_api_the_trace_and_metrics(serve_api):
    async with serve_api("shop", textwrap.dedent(config()), scopes=(Scope.READ,)) as (client, auth, store):
        number, loaded = await active_config(store)
        engine = Engine(loaded, backend=store, config_version=number)
        for seq in range(3):
            last = await engine.publish("CustomerChanged", changed("c7", seq))
        message_id = await handler_message_id(store)
        shown = (await client.get(f"/v1/projects/shop/messages/{message_id}", headers=auth)).json()
        assert (shown["state"], shown["debounced"], shown["debounce_key"]) == ("debounced", 3, "sync/c7")
        [node] = shown["runs"]
        assert node["kind"] == "debounced" and node["note"].startswith("debounced: holds the last of 3 event(s)")
        text = (await client.get("/metrics")).text
        assert 'flowbus_queue_depth{project="shop",queue="outbound",state="debounced"} 1.0' in text

        [run] = await work_until(Worker(engine), 1)
        assert run.event_id == last.id
        trace = (await client.get(f"/v1/projects/shop/runs/{run.id}", headers=auth)).json()
        [burst_node] = [child for child in trace["children"] if child["kind"] == "burst"]
        assert burst_node["events"] == 3
        assert burst_node["note"] == (
            f"ran for the last event of a burst of 3 (key 'sync/c7'); the 2 before it were debounced into message "
            f"{message_id}"
        )
        assert "ran for the last event of a burst of 3" in render(await trace_run(store, run))
        drawn = await timeline(store, run)  # the dashboard's run page
        [said] = [row for row in drawn.rows if row.status == "debounced"]
        assert said.note == burst_node["note"]
        assert to_data((await trace_message(store, message_id))[0])["kind"] == "run"
        text = (await client.get("/metrics")).text
        assert 'state="debounced"' not in text


async def handler_message_id(store) -> str:
    """The id of the one handler message in the store (read with the plain driver: no list of
    open messages is part of the store's contract)."""
    import sqlite3

    with sqlite3.connect(store.path) as conn:
        [(message_id,)] = conn.execute("SELECT id FROM messages WHERE kind = 'handler'").fetchall()
    return message_id


async def test_on_postgresql_senders_folding_two_bursts_in_opposite_orders_queue_instead_of_deadlocking(
    postgres_url,
):
    """Two connections fold bursts A and B, one in the order A B, the other B A, by ``send`` and
    by a changeset (a publish): without a lock order each would hold one burst's row and wait for
    the other's, and PostgreSQL would refuse one of them (a Conflict) after a second's stall."""
    from flowbus.runtime.changes import Changeset, Conflict
    from flowbus.stores.postgres import PostgresBackend

    a, b = PostgresBackend(postgres_url, "shop"), PostgresBackend(postgres_url, "shop")
    refused: list[Conflict] = []

    async def fold(backend: PostgresBackend, keys: str) -> None:
        for n in range(60):
            messages = [job(n, key=f"sync/{key}") for key in keys]
            try:
                if n % 2:
                    await backend.send(messages)
                else:
                    await backend.apply(Changeset(messages=messages))
            except Conflict as conflict:
                refused.append(conflict)

    try:
        await a.send([job(0, key="sync/A"), job(0, key="sync/B")])
        await asyncio.gather(fold(a, "AB"), fold(b, "BA"))
        assert refused == []
        assert await a.queue_depth() == {(OUT, MessageState.DEBOUNCED): 2}
        folded = await a.send([job(1, key="sync/A"), job(1, key="sync/B")])
        assert sorted([(await a.get_message(i)).debounced for i in folded]) == [122, 122]
    finally:
        await a.close()
        await b.close()


async def test_on_postgresql_a_claim_skips_a_due_burst_a_publisher_holds_and_promotes_it_next_time(postgres_url):
    """A publisher folding into a due burst holds its row until it commits: the claim's promotion
    leaves that row to the next claim rather than wait for it (or deadlock with a publisher that
    holds it and waits for a row the promotion holds)."""
    import psycopg

    from flowbus.stores.postgres import PostgresBackend

    backend = PostgresBackend(postgres_url, "shop")
    publisher = await psycopg.AsyncConnection.connect(postgres_url)
    try:
        [held, free] = await backend.send([job(1, key="sync/A", period_s=0.05), job(2, key="sync/B", period_s=0.05)])
        await asyncio.sleep(0.1)
        await publisher.execute(
            "SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (held,)
        )  # its transaction stays open
        claimed = await asyncio.wait_for(backend.claim([OUT], limit=10, owner="w", lease_s=60), 10)
        assert [m.id for m in claimed] == [free]
        assert (await backend.get_message(held)).state is MessageState.SCHEDULED
        await publisher.commit()
        [then] = await backend.claim([OUT], limit=10, owner="w", lease_s=60)
        assert then.id == held
    finally:
        await publisher.close()
        await backend.close()


#: publishes a burst for one key from a process of its own: argv is the database URL, the first
#: sequence number and how many
PUBLISHER = """
import asyncio, sys, textwrap
from flowbus.api.dashboard.timeline import timeline
from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.stores import open_backend

async def main(url, first, count):
    backend = open_backend(url, "shop")
    engine = Engine(load_config_text(sys.stdin.read()), backend=backend, config_version=1)
    for seq in range(first, first + count):
        await engine.publish("CustomerChanged", {"CustomerId": "c1", "Seq": seq})
    await backend.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


async def test_on_postgresql_a_burst_from_two_processes_and_several_connections_runs_once(postgres_url):
    from flowbus.stores.postgres import PostgresBackend

    text = textwrap.dedent(config(period="2s"))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, postgres_url, str(first), "30"], stdin=subprocess.PIPE, text=True
        )
        for first in (0, 30)
    ]
    for process in processes:
        process.stdin.write(text)
        process.stdin.close()
    backends = [PostgresBackend(postgres_url, "shop") for _ in range(3)]
    try:
        engines = [engine_on(b, text) for b in backends]

        async def publish(engine: Engine, first: int) -> None:
            for seq in range(first, first + 13):
                await engine.publish("CustomerChanged", changed("c1", seq))

        await asyncio.gather(*(publish(engine, 60 + 13 * i) for i, engine in enumerate(engines)))  # 60..98
        assert [await asyncio.to_thread(p.wait, 60) for p in processes] == [0, 0]
        last = await engines[0].publish("CustomerChanged", changed("c1", 99))
        assert await backends[0].count_events() == 100
        assert await handler_messages(backends[0]) == [(MessageState.DEBOUNCED, 1)]
        workers = [Worker(engine, WorkerSettings(batch_size=4)) for engine in engines]
        runs = await work_until(workers[0], 1)
        runs += [run for worker in workers for run in await worker.run_until_idle()]
        [run] = runs
        assert (run.event_id, run.outputs["seq"]) == (last.id, 99)
        assert (await backends[0].get_message(run.message_id)).debounced == 100
    finally:
        for backend in backends:
            await backend.close()
