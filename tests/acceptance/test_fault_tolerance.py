"""Fault tests: real worker processes on a real SQLite file, killed with SIGKILL mid-flow.

Nothing may be lost and nothing applied twice: every handler runs for every event exactly once
in effect, which the shop example's counters and records let us count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from flowbus.config.document import parse_file
from flowbus.publishing import active_config, publish_config
from flowbus.runtime.engine import Engine
from flowbus.stores.sqlite import SqliteBackend
from flowbus.testing import seed_entities

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHOP = EXAMPLES / "shop" / "flowbus.yaml"
EVENTS = int(os.environ.get("FLOWBUS_FAULT_EVENTS", "2000"))
KILLS = int(os.environ.get("FLOWBUS_FAULT_KILLS", "20"))
CUSTOMERS = 50

pytestmark = pytest.mark.slow


def worker(db: Path, *extra: str) -> subprocess.Popen[bytes]:
    project = [] if "--project" in extra else ["--project", "shop"]
    return subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", f"sqlite:///{db}", *project,
         "--batch-size", "16", "--lease-s", "1.5", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    """Signal the worker and wait for it; returns its exit code."""
    process.send_signal(sig)
    code = process.wait(timeout=30)
    if process.stderr is not None:
        process.stderr.close()
    return code


def wait_started(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Read the worker's log until it says it started (so that a SIGTERM finds its handler)."""
    deadline = time.monotonic() + timeout_s
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if b"worker started" in line:
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"the worker exited with {process.returncode} before starting")
    raise AssertionError("the worker did not start in time")


def open_messages(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM messages WHERE state IN ('ready', 'leased')").fetchone()[0]


async def prepare(db: Path) -> tuple[Decimal, dict[str, int]]:
    """Publish the shop config, seed it, and publish EVENTS OrderPlaced events (sync handler included)."""
    backend = SqliteBackend(db, "shop")
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


def test_sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice(tmp_path):
    db = tmp_path / "shop.db"
    revenue, points = asyncio.run(prepare(db))
    rng = random.Random(int(os.environ.get("FLOWBUS_FAULT_SEED", "20261122")))
    assert open_messages(db) == EVENTS * 4

    kills = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        process = worker(db)
        if kills < KILLS:
            time.sleep(rng.uniform(0.05, 0.6))
            stop(process, signal.SIGKILL)
            kills += 1
            continue
        wait_started(process)
        while open_messages(db) and time.monotonic() < deadline:  # no more kills: let it finish
            time.sleep(0.2)
        assert stop(process, signal.SIGTERM) == 0
        break
    assert kills == KILLS
    assert open_messages(db) == 0

    conn = sqlite3.connect(db)
    count = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    # every handler ran for every event: one succeeded run per (event, handler), sync one included
    assert count("SELECT count(DISTINCT event_id || handler) FROM runs WHERE status = 'succeeded'") == EVENTS * 5
    assert count("SELECT count(*) FROM messages WHERE state = 'dead'") == 0
    # nothing applied twice: records created per event, and counters summed per event
    assert count("SELECT count(*) FROM entities WHERE entity = 'Email'") == EVENTS
    assert count("SELECT count(*) FROM entities WHERE entity = 'PickingTicket'") == EVENTS
    backend = SqliteBackend(db, "shop")
    day = asyncio.run(backend.read_entity("DailySales", "2026-11-22")).record
    assert (day["orders"], day["revenue"]) == (EVENTS, revenue)
    customers = asyncio.run(backend.entities("Customer"))
    assert {key: record["loyalty_points"] for key, record in customers.items()} == points


def test_per_group_order_holds_with_two_workers(tmp_path):
    db = tmp_path / "groups.db"
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
        backend = SqliteBackend(db, "shop")
        await publish_config(backend, config, file="groups.yaml")
        number, loaded = await active_config(backend)
        engine = Engine(loaded, backend=backend, config_version=number)
        for n in range(60):
            for group in ("a", "b", "c", "d"):
                await engine.send("feed", "step", {"group": group, "n": n}, group_key=group)
        await backend.close()

    asyncio.run(prepare_groups())
    workers = [worker(db, "--batch-size", "3"), worker(db, "--batch-size", "5")]
    for process in workers:
        wait_started(process)
    deadline = time.monotonic() + 120
    while open_messages(db) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in workers:
        assert stop(process, signal.SIGTERM) == 0
    backend = SqliteBackend(db, "shop")
    logs = asyncio.run(backend.entities("Log"))
    assert {key: list(record["seen"]) for key, record in logs.items()} == {g: list(range(60)) for g in "abcd"}
    conn = sqlite3.connect(db)
    owners = conn.execute("SELECT count(DISTINCT substr(lease_owner, 1, 100)) FROM messages").fetchone()[0]
    assert owners == 0  # all done: no lease left behind


def test_a_running_worker_picks_up_a_newly_published_version(tmp_path):
    db = tmp_path / "compass.db"
    compass = (EXAMPLES / "compass" / "flowbus.yaml").read_text()
    url = f"sqlite:///{db}"

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "flowbus", *args, "--db", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    source = tmp_path / "flowbus.yaml"
    source.write_text(compass)
    assert cli("publish", str(source)).startswith("published version 1 of compass")
    process = worker(db, "--project", "compass")
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
        time.sleep(1.5)  # the worker looks for a new version about once a second
        second = cli("send", "--source", "compass_inbound", "--data", payload).split()[-1]
        deadline = time.monotonic() + 30
        while open_messages(db) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert stop(process, signal.SIGTERM) == 0
    backend = SqliteBackend(db, "compass")
    versions = [asyncio.run(backend.runs_for_message(m))[0].config_version for m in (first, second)]
    assert versions == [1, 2]
    assert list(asyncio.run(backend.entities("organisation"))) == ["a.example"]
