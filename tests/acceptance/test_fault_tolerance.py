"""Fault tests: real worker processes on a real database (a SQLite file, a PostgreSQL server),
killed with SIGKILL mid-flow.

Nothing may be lost and nothing applied twice: every handler runs for every event exactly once
in effect, which the shop example's counters and records let us count; every tick of a schedule
fires once, and every delayed message runs once, no earlier than asked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest

from flowbus.config.document import parse_file
from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores import open_backend
from flowbus.testing import seed_entities

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHOP = EXAMPLES / "shop" / "flowbus.yaml"
EVENTS = int(os.environ.get("FLOWBUS_FAULT_EVENTS", "2000"))
KILLS = int(os.environ.get("FLOWBUS_FAULT_KILLS", "20"))
CUSTOMERS = 50

pytestmark = pytest.mark.slow


#: worker processes sharing the database: SQLite has one writer at a time, PostgreSQL many
WORKERS = {"sqlite": 1, "postgres": 3}


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path) -> str:
    """The URL of an empty database of each kind in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flowbus.db'}"
    return request.getfixturevalue("postgres_url")


def scalar(url: str, sql: str) -> int:
    """One number from the database, read with the plain driver."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def worker(db: str, *extra: str) -> subprocess.Popen[bytes]:
    """A `flowbus worker` process; its log goes to a file (a pipe nobody reads would fill and block it)."""
    project = [] if "--project" in extra else ["--project", "shop"]
    log = tempfile.NamedTemporaryFile(prefix="flowbus-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", db, *project,
         "--batch-size", "16", "--lease-s", "1.5", *extra],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    log.close()
    LOGS[process.pid] = Path(log.name)
    return process


#: where each worker process writes its log, by pid
LOGS: dict[int, Path] = {}


def stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    """Signal the worker and wait for it; returns its exit code."""
    process.send_signal(sig)
    code = process.wait(timeout=30)
    log = LOGS.pop(process.pid)
    if code not in (0, -signal.SIGKILL):  # shown by pytest when the test fails
        print(log.read_text(errors="replace")[-3000:])
    log.unlink()
    return code


def wait_for_log(process: subprocess.Popen[bytes], text: str, timeout_s: float = 60) -> None:
    """Read the worker's log until it holds ``text``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in LOGS[process.pid].read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"the worker exited with {process.returncode} before logging {text!r}")
        time.sleep(0.05)
    raise AssertionError(f"the worker did not log {text!r} in {timeout_s:.0f} s")


def wait_started(process: subprocess.Popen[bytes]) -> None:
    """Wait until the worker says it started (so that a SIGTERM finds its handler)."""
    wait_for_log(process, "worker started")


def open_messages(db: str) -> int:
    return scalar(db, "SELECT count(*) FROM messages WHERE state IN ('ready', 'leased')")


async def prepare(db: str) -> tuple[Decimal, dict[str, int]]:
    """Publish the shop config, seed it, and publish EVENTS OrderPlaced events (sync handler included)."""
    backend = open_backend(db, "shop")
    await publish_config(backend, SHOP.read_text(), file=str(SHOP))
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    seed = parse_file(EXAMPLES / "shop" / "seed.yaml").data
    seed["Product"] = [{**p, "stock": 10**9} for p in seed["Product"]]
    seed["Customer"] = [{"id": f"c{i}", "name": f"C{i}", "email": f"c{i}@example.com"} for i in range(CUSTOMERS)]
    seed["Order"] = [{"id": f"o{i}", "lines": [{"Sku": "KB-01", "Quantity": 1}]} for i in range(EVENTS)]
    await seed_entities(engine, seed)
    when = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
    revenue = Decimal(0)
    points: dict[str, int] = {}
    for i in range(EVENTS):
        total = Decimal(10 + i % 7) + Decimal("0.25")
        customer = f"c{i % CUSTOMERS}"
        first = i < CUSTOMERS
        await engine.publish("OrderPlaced", {
            "OrderId": f"o{i}", "CustomerId": customer, "OrderNumber": f"SO-{i}", "TotalAmount": total,
            "OrderDate": when, "IsFirstOrder": first,
        })  # fmt: skip
        revenue += total
        points[customer] = points.get(customer, 0) + int(total) + (50 if first else 0)
    await backend.close()
    return revenue, points


def test_sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice(database):
    revenue, points = asyncio.run(prepare(database))
    rng = random.Random(int(os.environ.get("FLOWBUS_FAULT_SEED", "20261122")))
    assert open_messages(database) == EVENTS * 4

    # several workers where the database allows it; at random moments one of them is killed
    # with SIGKILL (no chance to clean up) and a new one started in its place
    kind = "sqlite" if database.startswith("sqlite") else "postgres"
    workers = [worker(database) for _ in range(WORKERS[kind])]
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.6))
        victim = rng.randrange(len(workers))
        stop(workers[victim], signal.SIGKILL)
        workers[victim] = worker(database)
    for process in workers:
        wait_started(process)
    deadline = time.monotonic() + 600
    while open_messages(database) and time.monotonic() < deadline:  # no more kills: let them finish
        time.sleep(0.2)
    for process in workers:
        assert stop(process, signal.SIGTERM) == 0
    assert open_messages(database) == 0

    def count(sql: str) -> int:
        return scalar(database, sql)

    # every handler ran for every event: one succeeded run per (event, handler), sync one included
    assert count("SELECT count(DISTINCT event_id || handler) FROM runs WHERE status = 'succeeded'") == EVENTS * 5
    assert count("SELECT count(*) FROM messages WHERE state = 'dead'") == 0
    # nothing applied twice: records created per event, and counters summed per event
    assert count("SELECT count(*) FROM entities WHERE entity = 'Email'") == EVENTS
    assert count("SELECT count(*) FROM entities WHERE entity = 'PickingTicket'") == EVENTS

    async def totals() -> tuple[dict, dict]:
        backend = open_backend(database, "shop")
        day = (await backend.read_entity("DailySales", "2026-11-22")).record
        customers = await backend.entities("Customer")
        await backend.close()
        return day, customers

    day, customers = asyncio.run(totals())
    assert (day["orders"], day["revenue"]) == (EVENTS, revenue)
    assert {key: record["loyalty_points"] for key, record in customers.items()} == points


def test_per_group_order_holds_across_workers(database):
    config = """
project: {name: shop}
sources: [{name: feed}]
flows:
  - name: Append
    source: feed
    event_type: step
    steps:
      - {id: current, action: get, entity: Log, record_id: "$.group"}
      - id: add
        action: save
        entity: Log
        data: {id: "$.group", seen: "=(steps.current == null ? [] : steps.current.seen) + [data.n]"}
"""

    async def prepare_groups() -> None:
        backend = open_backend(database, "shop")
        await publish_config(backend, config, file="groups.yaml")
        number, loaded = await active_config(backend)
        engine = Engine(loaded, backend=backend, config_version=number)
        for n in range(60):
            for group in ("a", "b", "c", "d", "e", "f"):
                await engine.send("feed", "step", {"group": group, "n": n}, group_key=group)
        await backend.close()

    asyncio.run(prepare_groups())
    many = 2 if database.startswith("sqlite") else 4
    workers = [worker(database, "--batch-size", str(2 + i)) for i in range(many)]
    for process in workers:
        wait_started(process)
    deadline = time.monotonic() + 120
    while open_messages(database) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in workers:
        assert stop(process, signal.SIGTERM) == 0

    async def logs() -> dict:
        backend = open_backend(database, "shop")
        found = await backend.entities("Log")
        await backend.close()
        return found

    assert {key: list(record["seen"]) for key, record in asyncio.run(logs()).items()} == {
        g: list(range(60)) for g in "abcdef"
    }
    assert scalar(database, "SELECT count(*) FROM messages WHERE lease_owner IS NOT NULL") == 0


def test_a_running_worker_picks_up_a_newly_published_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'compass.db'}"
    compass = (EXAMPLES / "compass" / "flowbus.yaml").read_text()

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "flowbus", *args, "--db", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr + done.stdout  # what a command did, then the id it printed

    source = tmp_path / "flowbus.yaml"
    source.write_text(compass)
    assert cli("publish", str(source)).startswith("published version 1 of compass")
    process = worker(url, "--project", "compass")
    wait_started(process)
    try:
        payload = '{"event": "upsert_company", "payload": {"domain": "a.example", "name": "A"}}'
        first = cli("send", "--source", "compass_inbound", "--data", payload).split()[-1]
        source.write_text(
            compass.replace("entity: company,", "entity: organisation,").replace(
                "company: domain", "organisation: domain"
            )
        )
        assert "flows: 1 changed" in cli("publish", str(source))
        wait_for_log(process, "switched config version")
        second = cli("send", "--source", "compass_inbound", "--data", payload).split()[-1]
        deadline = time.monotonic() + 30
        while open_messages(url) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert stop(process, signal.SIGTERM) == 0
    backend = open_backend(url, "compass")
    versions = [asyncio.run(backend.runs_for_message(m))[0].config_version for m in (first, second)]
    assert versions == [1, 2]
    assert list(asyncio.run(backend.entities("organisation"))) == ["a.example"]


# -- schedules and delays: a cron every second and delayed messages, workers killed meanwhile ----

SCHEDULED = """
project: {name: shop}
sources: [{name: feed}]
flows:
  - name: Beat
    inputs:
      Label: {type: String, required: true}
    steps: [{id: out, action: output, values: {label: "=inputs.Label"}}]
  - name: Later
    source: feed
    event_type: later
    steps: [{id: out, action: output, values: {n: "$.n"}}]
schedules:
  - {name: every_second, cron: "* * * * * *", catch_up: all, run: Beat, inputs: {Label: beat}}
"""
#: worker processes: SQLite has one writer at a time (two still race for each tick), PostgreSQL many
SCHEDULE_WORKERS = {"sqlite": 2, "postgres": 3}
DELAYED = 40
RUN_S = 8.0


def rows(url: str, sql: str) -> list[tuple]:
    """Rows from the database, read with the plain driver."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


async def prepare_delayed(db: str) -> None:
    """Publish the config and queue DELAYED messages, each delayed 1 to 4 seconds."""
    backend = open_backend(db, "shop")
    await publish_config(backend, SCHEDULED, file="flowbus.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    rng = random.Random(15)
    for n in range(DELAYED):
        await engine.send("feed", "later", {"n": n}, delay=rng.uniform(1, 4))
    await backend.close()


def test_each_tick_fires_once_and_each_delayed_message_runs_once_not_early_despite_sigkill(database):
    asyncio.run(prepare_delayed(database))
    kind = "sqlite" if database.startswith("sqlite") else "postgres"
    workers = [worker(database) for _ in range(SCHEDULE_WORKERS[kind])]
    for process in workers:
        wait_started(process)
    rng = random.Random(20261127)
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:  # kill one worker at a random moment, start another
        time.sleep(rng.uniform(0.3, 1.2))
        victim = rng.randrange(len(workers))
        stop(workers[victim], signal.SIGKILL)
        workers[victim] = worker(database)
    for process in workers:
        wait_started(process)
    time.sleep(1.5)
    for process in workers:
        assert stop(process, signal.SIGTERM) == 0
    flows = rows(database, "SELECT body, id FROM messages WHERE kind = 'flow'")
    ticks = [json.loads(body)["tick"] for body, _ in flows]
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    seconds = sorted(dt.datetime.fromisoformat(t) for t in ticks)
    assert len(seconds) >= RUN_S - 1
    # from the first tick on, no second is missing (catch_up: all), though workers died
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(seconds)] == [1.0] * (len(seconds) - 1)

    # every message that was queued ran once in effect (a run killed before its commit ran again)
    open_left = scalar(database, "SELECT count(*) FROM messages WHERE state IN ('ready', 'leased')")
    done = rows(database, "SELECT id, available_at FROM messages WHERE state = 'done'")
    runs = rows(database, "SELECT message_id, started_at FROM runs WHERE status = 'succeeded'")
    assert open_left <= 2  # at most the last ticks, queued as the workers stopped
    ran = {}
    for message_id, started in runs:
        assert message_id not in ran, "a message ran twice"
        ran[message_id] = started
    assert set(ran) == {message_id for message_id, _ in done}
    delayed = rows(database, "SELECT id, available_at FROM messages WHERE kind = 'source'")
    assert len(delayed) == DELAYED
    for message_id, available_at in delayed:
        started = ran[message_id]
        started = started if isinstance(started, dt.datetime) else dt.datetime.fromisoformat(started)
        assert started.timestamp() >= available_at, "a delayed message ran before its time"


#: one process racing others for every tick of a fast clock: argv is the database URL, the
#: first fake second, the number of seconds, a folder where each racer says it is ready, and how
#: many racers there are: each starts once all are ready (a start time fixed in advance was missed
#: by a racer still importing on a busy machine, and the others had fired every tick by then)
RACER = """
import asyncio, datetime as dt, os, sys, time
from flowbus.publishing import active_config
from flowbus.schedules import fire_due
from flowbus.stores import open_backend

async def race(db, first, seconds, ready, racers):
    backend = open_backend(db, "shop")
    number, loaded = await active_config(backend)
    open(os.path.join(ready, str(os.getpid())), "w").close()
    while len(os.listdir(ready)) < racers:
        time.sleep(0.005)
    fired = 0
    for i in range(seconds):
        now = dt.datetime.fromtimestamp(first + i, dt.UTC)
        fired += len(await fire_due(backend, loaded.plan, number, now=now))
    await backend.close()
    print(fired)

asyncio.run(race(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
"""


def test_workers_racing_on_a_fast_clock_fire_each_tick_exactly_once(database, tmp_path):
    async def publish() -> None:
        backend = open_backend(database, "shop")
        await publish_config(backend, SCHEDULED, file="flowbus.yaml")
        await backend.close()

    asyncio.run(publish())
    seconds, first = 150, dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.UTC).timestamp()
    kind = "sqlite" if database.startswith("sqlite") else "postgres"
    ready, count = tmp_path / "ready", SCHEDULE_WORKERS[kind] + 1
    ready.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database, str(first), str(seconds), str(ready), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    outputs = [racer.communicate(timeout=300) for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * len(racers), [err[-2000:] for _, err in outputs]
    fired = [int(out) for out, _ in outputs]
    ticks = [
        json.loads(body)["tick"] for body, _ in rows(database, "SELECT body, id FROM messages WHERE kind = 'flow'")
    ]
    assert sum(fired) == len(ticks) == len(set(ticks)) == seconds
    assert len([n for n in fired if n]) > 1  # they did race: more than one of them fired ticks


# -- debounce: bursts of events while workers are killed ---------------------------------------

DEBOUNCED = """
project: {name: shop}
events:
  - name: Changed
    properties: {Key: {type: String, required: true}, Seq: {type: Integer, required: true}}
flows:
  - name: Keep
    inputs: {Key: {type: String, required: true}, Seq: {type: Integer, required: true}}
    steps: [{id: out, action: output, values: {key: "=inputs.Key", seq: "=inputs.Seq"}}]
handlers:
  - name: keep
    event: Changed
    flow: Keep
    bindings: {Key: Key, Seq: Seq}
    debounce: {period: 300ms, key: "=event.data.Key", max_wait: 1s}
"""
DEBOUNCE_KEYS = 8


async def publish_bursts(db: str, workers: list[subprocess.Popen[bytes]]) -> dict[str, list[str]]:
    """For RUN_S seconds, bursts of 1 to 15 events of a random key, and now and then a worker
    killed with SIGKILL and another started; the ids of the events published, by key."""
    backend = open_backend(db, "shop")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    rng = random.Random(20261128)
    published: dict[str, list[str]] = {}
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        key = f"k{rng.randrange(DEBOUNCE_KEYS)}"
        for _ in range(rng.randint(1, 15)):
            seq = len(published.setdefault(key, []))
            published[key].append((await engine.publish("Changed", {"Key": key, "Seq": seq})).id)
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        if rng.random() < 0.3:
            victim = rng.randrange(len(workers))
            await asyncio.to_thread(stop, workers[victim], signal.SIGKILL)
            workers[victim] = worker(db)
    await backend.close()
    return published


def test_a_debounced_burst_loses_and_doubles_nothing_while_workers_are_killed(database):
    async def prepare() -> None:
        backend = open_backend(database, "shop")
        await publish_config(backend, DEBOUNCED, file="flowbus.yaml")
        await backend.close()

    asyncio.run(prepare())
    kind = "sqlite" if database.startswith("sqlite") else "postgres"
    workers = [worker(database) for _ in range(WORKERS[kind])]
    published = asyncio.run(publish_bursts(database, workers))
    for process in workers:
        wait_started(process)
    deadline = time.monotonic() + 120
    waiting = "SELECT count(*) FROM messages WHERE state IN ('ready', 'leased', 'scheduled')"
    while scalar(database, waiting) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in workers:
        assert stop(process, signal.SIGTERM) == 0
    assert scalar(database, waiting) == 0

    messages = rows(database, "SELECT id, state, body, debounced FROM messages WHERE kind = 'handler'")
    runs = rows(database, "SELECT message_id, event_id FROM runs WHERE status = 'succeeded'")
    # nothing lost: every event was folded into one message, and every message ran
    assert sum(debounced for *_, debounced in messages) == sum(len(ids) for ids in published.values())
    assert {state for _, state, _, _ in messages} == {"done"}
    ran: dict[str, str] = {}
    for message_id, event_id in runs:
        assert message_id not in ran, "a debounced message ran twice"
        ran[message_id] = event_id
    # nothing doubled: one run a message, for the last event its burst held
    assert ran == {message_id: json.loads(body)["event_id"] for message_id, _, body, _ in messages}
    assert len(ran) < sum(len(ids) for ids in published.values())  # bursts were debounced
    # the last event of every key ran
    assert {ids[-1] for ids in published.values()} <= set(ran.values())
