"""Retention on every backend, with a fake clock: what is past its age goes, what is inside it
stays, traces of kept runs stay whole, a blocking dead letter survives, one sweeper at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import textwrap

from flowbus.config import load_config_text
from flowbus.config.retention import Retention
from flowbus.engine import Engine
from flowbus.queue import MessageState
from flowbus.retention import Sweeper, SweepSettings, cutoffs, purge
from flowbus.runtime.records import StepStatus
from flowbus.stores.protocols import RetentionKind
from flowbus.trace import render, to_data, trace_event, trace_run

CONFIG = """
project: {name: shop}
sources: [{name: shop}]
events:
  - name: Ordered
    properties: {Id: {type: String, required: true}}
flows:
  - name: Take
    source: shop
    event_type: order
    steps:
      - {id: note, action: set, vars: {id: "$.id"}}
      - {id: tell, action: publish, event: Ordered, properties: {Id: "$.id"}}
  - name: Ship
    inputs: {Id: {type: String, required: true}}
    steps:
      - {id: say, action: log, message: "=inputs.Id"}
  - name: Stuck
    source: shop
    event_type: stuck
    on_failure: block
    steps: [{id: down, action: fail, message: down}]
  - name: Parked
    source: shop
    event_type: parked
    steps: [{id: down, action: fail, message: down}]
handlers:
  - {name: ship, event: Ordered, flow: Ship, mode: async, bindings: {Id: Id}}
"""
WEEK = dt.timedelta(days=7)


def engine_on(backend) -> Engine:
    return Engine(load_config_text(textwrap.dedent(CONFIG)), backend=backend, config_version=1)


async def orders(engine: Engine, *ids: str) -> None:
    for order_id in ids:
        await engine.send("shop", "order", {"id": order_id})
    await engine.drain()


async def a_moment_between(engine: Engine, before: tuple[str, ...], after: tuple[str, ...]) -> dt.datetime:
    """Orders ``before``, then a time, then orders ``after``: the time splits old from new."""
    await orders(engine, *before)
    await asyncio.sleep(0.01)
    moment = dt.datetime.now(dt.UTC)
    await asyncio.sleep(0.01)
    await orders(engine, *after)
    return moment


def sweeper(backend, policy: Retention, now: dt.datetime, owner: str = "w1") -> Sweeper:
    return Sweeper(backend, lambda: policy, owner=owner, now=lambda: now, settings=SweepSettings(batch=2))


def far_future() -> dt.datetime:
    """A cut that everything stored is before."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)


async def counts(backend) -> dict[RetentionKind, int]:
    return {kept.kind: kept.rows for kept in await backend.kept()}


async def test_records_past_their_age_go_and_records_inside_it_stay(backend):
    engine = engine_on(backend)
    moment = await a_moment_between(engine, ("o1", "o2", "o3"), ("o4",))
    before = await counts(backend)
    assert before[RetentionKind.EVENTS] == 4 and before[RetentionKind.RUNS] == 8
    assert before[RetentionKind.MESSAGES] == 8  # each order's source message and its handler's job

    week = Retention(events=WEEK, runs=WEEK, steps=WEEK, messages=WEEK, dead_letters=WEEK)
    removed = await sweeper(backend, week, moment + WEEK).tick()

    assert removed == {
        RetentionKind.RUNS: 6, RetentionKind.STEPS: 0, RetentionKind.EVENTS: 3, RetentionKind.MESSAGES: 6,
        RetentionKind.DEAD_LETTERS: 0,
    }  # fmt: skip
    after = await counts(backend)
    assert (after[RetentionKind.EVENTS], after[RetentionKind.RUNS], after[RetentionKind.MESSAGES]) == (1, 2, 2)
    [kept] = await backend.list_events()
    assert kept.data == {"Id": "o4"}
    # the kept run's trace is whole: its steps, the event it published, the handler's run
    [take] = [run for run in await backend.list_runs() if run.flow == "Take"]
    assert [step.step_id for step in take.steps] == ["note", "tell"]
    tree = to_data(await trace_run(backend, take))
    [published] = tree["children"][1]["children"]
    assert published["kind"] == "event" and published["children"][0]["flow"] == "Ship"
    # a second sweep at the same time finds nothing more
    assert set((await sweeper(backend, week, moment + WEEK).tick()).values()) == {0}


async def test_steps_kept_shorter_than_runs_leave_the_run_with_a_note(backend):
    engine = engine_on(backend)
    moment = await a_moment_between(engine, ("o1",), ("o2",))
    policy = Retention(steps=WEEK, runs=2 * WEEK, events=2 * WEEK)
    removed = await sweeper(backend, policy, moment + WEEK).tick()
    assert removed[RetentionKind.STEPS] == 2 and removed[RetentionKind.RUNS] == 0

    old, new = sorted((r for r in await backend.list_runs() if r.flow == "Take"), key=lambda r: r.id)
    # the old run keeps its status, timings and error, and says its step detail expired
    assert old.status.value == "succeeded" and old.duration_s > 0
    [marker] = old.steps
    assert marker.status is StepStatus.CUT and marker.output["count"] == 2
    assert "the step detail has expired" in render(await trace_run(backend, old))
    assert [step.step_id for step in new.steps] == ["note", "tell"]
    # the old run's event is kept, and its trace still reaches the run's record
    [event, _] = sorted(await backend.list_events(), key=lambda e: e.id)
    assert "run Ship [succeeded]" in render(await trace_event(backend, event))


async def test_a_dead_letter_that_blocks_its_group_survives_every_purge(backend):
    engine = engine_on(backend)
    blocking = await engine.send("shop", "stuck", {}, group_key="g1")
    parked = await engine.send("shop", "parked", {}, group_key="g2")
    await engine.drain()
    assert (await backend.get_message(blocking)).blocking
    assert (await backend.get_message(parked)).state is MessageState.DEAD

    everything = dict.fromkeys(RetentionKind, far_future())
    assert (await purge(backend, everything, dry_run=True))[RetentionKind.DEAD_LETTERS] == 1
    removed = await purge(backend, everything)
    assert removed[RetentionKind.DEAD_LETTERS] == 1
    assert await backend.get_message(parked) is None
    assert (await backend.get_message(blocking)).state is MessageState.DEAD


async def test_open_messages_are_never_purged(backend):
    engine = engine_on(backend)
    waiting = await engine.send("shop", "order", {"id": "o1"})
    assert await purge(backend, {RetentionKind.MESSAGES: far_future()}) == {RetentionKind.MESSAGES: 0}
    assert (await backend.get_message(waiting)).state is MessageState.READY


async def test_a_dry_run_counts_what_a_purge_removes_and_removes_nothing(backend):
    engine = engine_on(backend)
    moment = await a_moment_between(engine, ("o1", "o2"), ("o3",))
    due = cutoffs(Retention(events=WEEK, runs=WEEK, steps=WEEK, messages=WEEK), moment + WEEK)
    before = await counts(backend)
    counted = await purge(backend, due, dry_run=True)
    assert await counts(backend) == before and before[RetentionKind.RUNS] == 6
    assert counted[RetentionKind.RUNS] == 4 and counted[RetentionKind.EVENTS] == 2
    assert await purge(backend, due, batch=3) == counted


async def test_only_one_worker_sweeps_a_project_at_a_time(backend):
    now = dt.datetime.now(dt.UTC)
    first, second = (sweeper(backend, Retention(), now, owner) for owner in ("w1", "w2"))
    assert await first.tick() is not None
    assert await second.tick() is None  # the first holds the project's sweep lease
    assert await first.tick() is not None  # and renews it
    later = sweeper(backend, Retention(), now + dt.timedelta(seconds=SweepSettings().lease_s + 1), "w2")
    assert await later.tick() is not None  # the lease ran out: another worker takes over


async def test_kept_tells_the_age_of_the_oldest_of_each_kind(backend):
    engine = engine_on(backend)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await orders(engine, "o1")
    for kept in await backend.kept():
        if kept.kind is RetentionKind.DEAD_LETTERS:
            assert (kept.rows, kept.oldest) == (0, None)
        else:
            assert kept.rows >= 1 and started <= kept.oldest <= dt.datetime.now(dt.UTC)


async def test_two_processes_never_hold_the_sweep_of_one_project_at_once(tmp_path):
    import subprocess
    import sys

    from flowbus.stores.sqlite import SqliteBackend

    db = tmp_path / "flowbus.db"
    take = (
        "import asyncio, datetime as dt, sys\n"
        "from flowbus.stores.sqlite import SqliteBackend\n"
        "async def main():\n"
        f"    b = SqliteBackend({str(db)!r}, 'shop')\n"
        "    taken = await b.take_sweep('other', now=dt.datetime.now(dt.UTC), lease_s=300)\n"
        "    await b.close()\n"
        "    sys.exit(0 if taken else 1)\n"
        "asyncio.run(main())\n"
    )
    here = SqliteBackend(db, "shop")
    try:
        assert subprocess.run([sys.executable, "-c", take], check=False).returncode == 0
        assert await sweeper(here, Retention(), dt.datetime.now(dt.UTC), "this").tick() is None
        other_project = SqliteBackend(db, "books")
        assert await sweeper(other_project, Retention(), dt.datetime.now(dt.UTC), "this").tick() is not None
        await other_project.close()
    finally:
        await here.close()


async def test_purged_messages_take_their_expired_deduplication_entries_with_them(tmp_path):
    import sqlite3

    from flowbus.stores.sqlite import SqliteBackend

    backend = SqliteBackend(tmp_path / "flowbus.db", "shop", dedup_window_s=0.01)
    try:
        engine = engine_on(backend)
        for n in range(3):
            await engine.send("shop", "order", {"id": f"o{n}"}, dedup_id=f"d{n}")
        await engine.drain()
        await asyncio.sleep(0.02)  # the window has passed
        assert (await purge(backend, {RetentionKind.MESSAGES: far_future()}))[RetentionKind.MESSAGES] == 6
        with sqlite3.connect(tmp_path / "flowbus.db") as conn:
            assert conn.execute("SELECT count(*) FROM dedup").fetchone()[0] == 0
    finally:
        await backend.close()


async def test_a_running_worker_sweeps_what_is_past_its_age(backend):
    from flowbus.ids import floor_id
    from flowbus.worker import Worker, WorkerSettings

    engine = engine_on(backend)
    await orders(engine, "o1")
    [kept, *_] = await backend.list_runs()
    old = kept._replace(id=floor_id(dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))
    await backend.record_runs([old])
    worker = Worker(engine, WorkerSettings(sweep=SweepSettings(every_s=0.01)))
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(500):
            if await backend.get_run(old.id) is None:
                break
            await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await running
    assert await backend.get_run(old.id) is None  # past the default 30 days of runs
    assert await backend.get_run(kept.id) == kept


async def test_a_sqlite_file_gives_the_space_of_purged_rows_back(tmp_path):
    import sqlite3

    from flowbus.stores.sqlite import SqliteBackend

    backend = SqliteBackend(tmp_path / "flowbus.db", "shop")
    try:
        await orders(engine_on(backend), *(f"o{n}" for n in range(200)))
        pages = sqlite3.connect(tmp_path / "flowbus.db").execute("PRAGMA page_count").fetchone()[0]
        await purge(backend, dict.fromkeys(RetentionKind, far_future()))
        with sqlite3.connect(tmp_path / "flowbus.db") as conn:
            assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
            assert conn.execute("PRAGMA page_count").fetchone()[0] < pages
    finally:
        await backend.close()


async def test_a_delayed_message_is_aged_from_when_it_was_due_not_from_when_it_was_sent(backend):
    """A message delayed for longer than dead letters are kept, dead on delivery, is a fresh dead
    letter: the cut between its sending and its due time leaves it."""
    engine = engine_on(backend)
    sent_at = dt.datetime.now(dt.UTC)
    parked = await engine.send("shop", "parked", {}, delay=0.3)
    await asyncio.sleep(0.35)
    await engine.drain()
    assert (await backend.get_message(parked)).state is MessageState.DEAD
    between = sent_at + dt.timedelta(seconds=0.15)
    assert await purge(backend, {RetentionKind.DEAD_LETTERS: between}) == {RetentionKind.DEAD_LETTERS: 0}
    assert (await backend.get_message(parked)).state is MessageState.DEAD
    assert await purge(backend, {RetentionKind.DEAD_LETTERS: far_future()}) == {RetentionKind.DEAD_LETTERS: 1}


class TakenOverAfterOneBatch:
    """The real backend, with another worker taking the sweep lease right after the first batch
    (as one would while this worker stalled past its lease): the interleaving, made certain."""

    def __init__(self, backend, at: dt.datetime) -> None:
        self._backend, self._at, self.batches = backend, at, 0

    def __getattr__(self, name):
        return getattr(self._backend, name)

    async def purge(self, kind, before, *, limit):
        removed = await self._backend.purge(kind, before, limit=limit)
        self.batches += 1
        if self.batches == 1:
            assert await self._backend.take_sweep("w2", now=self._at, lease_s=600)
        return removed


async def test_a_sweep_that_loses_its_lease_mid_tick_stops_there(backend):
    """The lease is renewed before each batch: once another worker holds it, this one stops."""
    engine = engine_on(backend)
    await orders(engine, "o1", "o2", "o3", "o4", "o5", "o6")
    now = far_future()
    settings = SweepSettings(batch=2, lease_s=60)
    taken_over = TakenOverAfterOneBatch(backend, now + dt.timedelta(seconds=61))
    removed = await Sweeper(taken_over, Retention, owner="w1", now=lambda: now, settings=settings).tick()
    assert taken_over.batches == 1 and removed is not None and sum(removed.values()) == 2
    assert (await counts(backend))[RetentionKind.RUNS] == 10
