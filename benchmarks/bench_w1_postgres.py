"""W1 (fan-out) on PostgreSQL with 1, 2 and 4 worker processes: N OrderPlaced events, 3 async
handlers each doing trivial store work. Prints handler runs/s for each worker count beside the raw
PostgreSQL ceiling measured in the same run (the same rows in batched inserts on one connection).

    python benchmarks/bench_w1_postgres.py [--events 20000] [--workers 1,2,4] [--publish-batch 100]
        [--server postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import subprocess
import sys
import time
import uuid

import psycopg
from bench_w1_sqlite import CONFIG, HANDLERS, WHEN, payload

from flowbus.codec import encode
from flowbus.engine import Engine
from flowbus.events.frozen import freeze
from flowbus.ids import new_id
from flowbus.publishing import active_config, publish_config
from flowbus.stores.postgres import PostgresBackend


def database(server: str, name: str) -> str:
    return f"{server.rpartition('/')[0]}/{name}"


async def publish_events(url: str, n: int, batch: int = 1) -> tuple[float, float]:
    """Wall and CPU seconds to publish ``n`` events: one commit each (``batch`` 1), or
    ``Engine.publish_many`` of ``batch`` events a commit."""
    backend = PostgresBackend(url, "w1")
    await publish_config(backend, CONFIG, file="w1.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    start, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, n, batch):
        if batch == 1:
            await engine.publish("OrderPlaced", payload(lo))
        else:
            await engine.publish_many([("OrderPlaced", payload(i)) for i in range(lo, min(lo + batch, n))])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await backend.close()
    return elapsed, cpu


def drain(url: str, workers: int, expected: int, batch_size: int) -> tuple[float, float]:
    """Seconds from the first handler run to the last, with ``workers`` worker processes, and the
    CPU seconds (user+sys) those processes used, their start-up included."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowbus",
                "worker",
                "--db",
                url,
                "--project",
                "w1",
                "--batch-size",
                str(batch_size),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            while conn.execute("SELECT count(*) FROM messages WHERE state <> 'done'").fetchone()[0]:  # type: ignore[index]
                time.sleep(0.05)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
        done, first, last = conn.execute(
            "SELECT count(*), min(started_at), max(started_at) FROM runs WHERE trigger = 'handler' AND status = 'succeeded'"
        ).fetchone()  # type: ignore[misc]
    if done != expected:
        raise SystemExit(f"expected {expected} handler runs, found {done}")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    return (last - first).total_seconds(), cpu_s


def ceiling(url: str, n: int, batch_size: int) -> float:
    """Seconds to write the rows of handling every message, in batched statements on one connection."""
    step = encode([["write", "write", "save", "succeeded", {}, {}, None, 0.0]])
    events, messages = [], []
    for i in range(n):
        event_id = new_id()
        events.append(
            ("w1", event_id, "OrderPlaced", 1, "flowbus", WHEN, encode(freeze(payload(i))), event_id, None, 0)
        )
        for name in HANDLERS:
            messages.append(("w1", new_id(), "outbound", "handler", encode({"handler": name, "event_id": event_id}),
                             None, f"{event_id}/{name}", "ready", 0, 1, WHEN, 0.0))  # fmt: skip
    with psycopg.connect(url) as conn:
        for lo in range(0, n, batch_size):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO events VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", events[lo : lo + batch_size]
                )
                cur.executemany(
                    "INSERT INTO messages (project, id, queue, kind, body, group_key, dedup_id, state, attempts, "
                    "config_version, created_at, available_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    messages[lo * 3 : (lo + batch_size) * 3],
                )
        start = time.perf_counter()  # what a worker does per handler run: the entity, the run, the ack
        for lo in range(0, len(messages), batch_size):
            batch = messages[lo : lo + batch_size]
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO entities VALUES ('w1', 'Confirm', %s, '{\"id\":\"x\"}', 1) "
                    "ON CONFLICT (project, entity, key) DO UPDATE SET data = excluded.data",
                    [(m[1],) for m in batch],
                )
                cur.executemany(
                    "INSERT INTO runs VALUES ('w1', %s, 'Confirm', 'handler', 'succeeded', %s, 0, '{}', '{}', %s, "
                    "NULL, 'Confirm', %s, %s, NULL, 1, 1)",
                    [(new_id(), WHEN, step, m[1], m[1]) for m in batch],
                )
                cur.executemany(
                    "UPDATE messages SET state = 'done' WHERE project = 'w1' AND id = %s", [(m[1],) for m in batch]
                )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--publish-batch", type=int, default=100, help="events a commit for publish_many")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    n, runs = args.events, args.events * len(HANDLERS)
    tag = uuid.uuid4().hex[:8]
    template, created = f"flowbus_w1_{tag}", []
    admin = psycopg.connect(args.server, autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{template}"')
        created.append(template)
        publish_s, publish_cpu = asyncio.run(publish_events(database(args.server, template), n))
        print(f"W1 on PostgreSQL: {n:,} events x {len(HANDLERS)} async handlers, batch {args.batch_size}")
        print(
            f"publish: {n / publish_s:,.0f} events/s, {publish_cpu / n * 1e6:,.0f} CPU-µs/event (one commit per event)"
        )
        many_db = f"flowbus_w1_{tag}_many"
        admin.execute(f'CREATE DATABASE "{many_db}"')
        created.append(many_db)
        many_s, many_cpu = asyncio.run(publish_events(database(args.server, many_db), n, args.publish_batch))
        print(
            f"publish_many: {n / many_s:,.0f} events/s, {many_cpu / n * 1e6:,.0f} CPU-µs/event "
            f"({args.publish_batch} events a commit)"
        )
        ceiling_db = f"flowbus_w1_{tag}_ceiling"
        admin.execute(f'CREATE DATABASE "{ceiling_db}" TEMPLATE "{template}"')
        created.append(ceiling_db)
        raw_s = ceiling(database(args.server, ceiling_db), n, args.batch_size)
        print(f"{'':24}{'handler runs/s':>16}{'of ceiling':>12}{'vs 1 worker':>13}{'worker CPU-µs/run':>19}")
        one = None
        for workers in (int(w) for w in args.workers.split(",")):
            name = f"flowbus_w1_{tag}_{workers}"
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            created.append(name)
            drain_s, cpu_s = drain(database(args.server, name), workers, runs, args.batch_size)
            rate = runs / drain_s
            one = one or rate
            label = f"{workers} worker process" + ("es" if workers > 1 else "")
            print(
                f"{label:24}{rate:>16,.0f}{rate / (runs / raw_s):>12.1%}{rate / one:>13.2f}{cpu_s / runs * 1e6:>19,.0f}"
            )
        print(f"{'raw PostgreSQL ceiling':24}{runs / raw_s:>16,.0f}{'100.0%':>12}")
    finally:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
