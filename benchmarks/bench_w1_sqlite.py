"""W1 (fan-out) on SQLite: N OrderPlaced events, 3 async handlers each doing trivial store work,
1 worker process. Prints events/s and handler runs/s end to end, beside the raw SQLite ceiling
measured in the same run: the same rows appended in batched transactions on one connection.

    python benchmarks/bench_w1_sqlite.py [--events 20000] [--batch-size 64] [--synchronous normal|full]

``--synchronous full`` runs everything (the publisher, the worker, the ceiling) with SQLite's
``synchronous=FULL``, an fsync per commit: what ``sqlite:///f.db?synchronous=full`` chooses.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from flowbus.codec import encode
from flowbus.engine import Engine
from flowbus.events.frozen import freeze
from flowbus.ids import new_id
from flowbus.publishing import active_config, publish_config
from flowbus.stores.sqlite import SqliteBackend, connect

HANDLERS = ("Confirm", "Notify", "Count")
CONFIG = """
project: {name: w1}
events:
  - name: OrderPlaced
    properties:
      OrderId: {type: EntityReference, entity: Order, required: true}
      CustomerId: {type: EntityReference, entity: Customer, required: true}
      OrderNumber: {type: String, required: true}
      TotalAmount: {type: Money, required: true}
      OrderDate: {type: DateTime, required: true}
flows:
""" + "".join(
    f"""  - name: {name}
    inputs: {{OrderId: {{type: EntityReference, entity: Order, required: true}}, TotalAmount: {{type: Money}}}}
    steps:
      - {{id: write, action: save, entity: {name}, data: {{id: "=inputs.OrderId", total: "=inputs.TotalAmount"}}}}
"""
    for name in HANDLERS
) + "handlers:\n" + "".join(
    f"  - {{name: {name}, event: OrderPlaced, flow: {name}, mode: async, bindings: {{OrderId: OrderId, TotalAmount: TotalAmount}}}}\n"
    for name in HANDLERS
)  # fmt: skip

WHEN = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def payload(i: int) -> dict[str, object]:
    return {"OrderId": f"o{i}", "CustomerId": f"c{i % 100}", "OrderNumber": f"SO-{i}",
            "TotalAmount": Decimal("19.90"), "OrderDate": WHEN}  # fmt: skip


async def publish_events(db: Path, n: int, synchronous: str) -> float:
    backend = SqliteBackend(db, "w1", synchronous=synchronous.upper())
    await publish_config(backend, CONFIG, file="w1.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    start = time.perf_counter()
    for i in range(n):
        await engine.publish("OrderPlaced", payload(i))
    elapsed = time.perf_counter() - start
    await backend.close()
    return elapsed


def drain_with_worker(db: Path, expected: int, batch_size: int, synchronous: str) -> tuple[float, float]:
    """Run one `flowbus worker` process until every job is done: seconds from its first run to its
    last, and the CPU seconds the process used (its start-up included)."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", f"sqlite:///{db}?synchronous={synchronous}",
         "--project", "w1", "--batch-size", str(batch_size)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conn = sqlite3.connect(db, timeout=60)
    try:
        while conn.execute("SELECT count(*) FROM messages WHERE state <> 'done'").fetchone()[0]:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    done = conn.execute("SELECT count(*) FROM runs WHERE status = 'succeeded' AND trigger = 'handler'").fetchone()[0]
    if done != expected:
        raise SystemExit(f"expected {expected} handler runs, found {done}")
    first, last = conn.execute("SELECT min(started_at), max(started_at) FROM runs WHERE trigger = 'handler'").fetchone()
    return (dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(first)).total_seconds(), cpu_s


def startup_cpu(db: Path) -> float:
    """CPU seconds a `flowbus worker` process spends before it starts working (imports, the
    config compiled, the store opened): one started on the drained database, stopped as soon as
    it says it started. Part of the worker's CPU above, whatever the number of events."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", f"sqlite:///{db}", "--project", "w1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if "worker started" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime


def ceiling(db: Path, n: int, batch_size: int, synchronous: str) -> tuple[float, float]:
    """The same rows, appended with executemany in batched transactions: (publish s, handle s)."""
    conn = connect(db, synchronous=synchronous.upper())
    step = json.dumps([["write", "write", "save", "succeeded", {}, {}, None, 0.0]])
    events, messages = [], []
    for i in range(n):
        event_id = new_id()
        data = encode(freeze(payload(i)))
        events.append(("w1", event_id, "OrderPlaced", 1, "flowbus", WHEN.isoformat(), data, event_id, None, 0))
        for name in HANDLERS:
            body = encode({"handler": name, "event_id": event_id})
            messages.append(("w1", new_id(), "outbound", "handler", body, None, f"{event_id}/{name}", "ready", 0, 1,
                             WHEN.isoformat(), 0.0))  # fmt: skip
    start = time.perf_counter()
    for lo in range(0, n, batch_size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)", events[lo : lo + batch_size])
        conn.executemany(
            "INSERT INTO messages (project, id, queue, kind, body, group_key, dedup_id, state, attempts, "
            "config_version, created_at, available_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            messages[lo * 3 : (lo + batch_size) * 3],
        )
        conn.execute("COMMIT")
    published = time.perf_counter() - start
    start = time.perf_counter()
    for lo in range(0, len(messages), batch_size):
        batch = messages[lo : lo + batch_size]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO entities VALUES ('w1', 'Confirm', ?, ?, 1) ON CONFLICT DO UPDATE SET data = excluded.data",
            [(m[1], '{"id":"x","total":{"$decimal":"19.90"}}') for m in batch],
        )
        conn.executemany(
            "INSERT INTO runs VALUES ('w1', ?, 'Confirm', 'handler', 'succeeded', ?, 0.0, '{}', '{}', ?, NULL, "
            "'Confirm', ?, ?, NULL, 1, 1)",
            [(new_id(), WHEN.isoformat(), step, m[1], m[1]) for m in batch],
        )
        conn.executemany("UPDATE messages SET state = 'done' WHERE project = 'w1' AND id = ?", [(m[1],) for m in batch])
        conn.execute("COMMIT")
    handled = time.perf_counter() - start
    conn.close()
    return published, handled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--synchronous", choices=("normal", "full"), default="normal")
    args = parser.parse_args()
    n, runs = args.events, args.events * len(HANDLERS)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w1.db"
        publish_s = asyncio.run(publish_events(db, n, args.synchronous))
        drain_s, worker_cpu_s = drain_with_worker(db, runs, args.batch_size, args.synchronous)
        start_cpu_s = startup_cpu(db)
        ceiling_publish_s, ceiling_handle_s = ceiling(Path(tmp) / "ceiling.db", n, args.batch_size, args.synchronous)
    total_s = publish_s + drain_s
    ceiling_total_s = ceiling_publish_s + ceiling_handle_s
    print(
        f"W1 on SQLite: {n:,} events x {len(HANDLERS)} async handlers, 1 worker process, batch {args.batch_size}, "
        f"synchronous={args.synchronous}"
    )
    print(f"{'':34}{'events/s':>12}{'handler runs/s':>16}{'of ceiling':>12}")
    print(f"{'publish (1 commit per event)':34}{n / publish_s:>12,.0f}{'':>16}{ceiling_publish_s / publish_s:>12.1%}")
    print(f"{'worker (handler runs)':34}{'':>12}{runs / drain_s:>16,.0f}{ceiling_handle_s / drain_s:>12.1%}")
    print(f"{'end to end':34}{n / total_s:>12,.0f}{runs / total_s:>16,.0f}{ceiling_total_s / total_s:>12.1%}")
    print(
        f"{'raw SQLite ceiling (same rows)':34}{n / ceiling_total_s:>12,.0f}{runs / ceiling_total_s:>16,.0f}{'100.0%':>12}"
    )
    print(f"worker process CPU: {worker_cpu_s:.2f} s, {worker_cpu_s / runs * 1e6:,.0f} us per handler run")
    working_s = worker_cpu_s - start_cpu_s
    print(
        f"  of which start-up {start_cpu_s:.2f} s (an idle worker's, measured apart); "
        f"the rest {working_s / runs * 1e6:,.0f} us per handler run"
    )


if __name__ == "__main__":
    main()
