"""W1 (fan-out) on PostgreSQL with 1, 2 and 4 worker processes: N OrderPlaced events, 3 async
handlers each doing trivial store work. Prints handler runs/s for each worker count beside the raw
PostgreSQL ceiling measured in the same run (the same rows in batched inserts on one connection),
and the workers' CPU per handler run, over the whole drain and over its steady middle (from 20% to
80% of the runs finished, as bench_w1_sqlite.py reads it).

    python benchmarks/bench_w1_postgres.py [--events 20000] [--workers 1,2,4] [--publish-batch 100]
        [--server postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from bench_w1_sqlite import (
    CONFIG,
    HANDLERS,
    STEADY_FROM,
    STEADY_TO,
    WHEN,
    Drain,
    W1Figures,
    children_cpu_s,
    payload,
    sample_until_drained,
    steady_middle,
)

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
    active = await active_config(backend)
    if active is None:
        raise SystemExit("no config is active in the benchmark's database")
    number, loaded = active
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


def drain(url: str, workers: int, expected: int, batch_size: int) -> Drain:
    """Run ``workers`` worker processes until every job is done."""
    cpu_before = children_cpu_s()
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

        def open_messages() -> int:
            # the partial index of open messages answers this without reading the finished ones
            row = conn.execute(
                "SELECT count(*) FROM messages WHERE project = 'w1' AND state IN ('ready', 'leased')"
            ).fetchone()
            return row[0] if row is not None else 0

        try:
            samples = sample_until_drained(processes, open_messages)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
        found = conn.execute(
            "SELECT started_at, duration_s FROM runs WHERE trigger = 'handler' AND status = 'succeeded'"
        ).fetchall()
    if len(found) != expected:
        raise SystemExit(f"expected {expected} handler runs, found {len(found)}")
    cpu_s = children_cpu_s() - cpu_before
    started = sorted(at.timestamp() for at, _ in found)
    finished = sorted(at.timestamp() + s for at, s in found)
    return Drain(
        workers=workers, seconds=started[-1] - started[0], cpu_s=cpu_s, steady=steady_middle(samples, finished)
    )


def ceiling(url: str, n: int, batch_size: int) -> tuple[float, float]:
    """The same rows written in batched statements on one connection: seconds to append the
    events and their messages, and seconds to write the rows of handling every message."""
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
        start = time.perf_counter()
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
        published = time.perf_counter() - start
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
        return published, time.perf_counter() - start


@dataclass(frozen=True, kw_only=True)
class W1Postgres(W1Figures):
    """The figures of W1 on PostgreSQL: one publish, drained by each number of workers in a copy
    of the published database, beside the raw ceiling."""

    #: the CPU seconds of publishing every event, one commit each
    publish_cpu_s: float
    #: events a commit for ``publish_many``, and its wall and CPU seconds; None when not measured
    publish_batch: int | None
    publish_many_s: float | None
    publish_many_cpu_s: float | None
    drains: tuple[Drain, ...]

    def drain_runs_per_s(self, drain: Drain) -> float:
        return self.handler_runs / drain.seconds

    def end_to_end_runs_per_s(self, drain: Drain) -> float:
        return self.handler_runs / (self.publish_s + drain.seconds)


def measure(
    server: str,
    events: int,
    workers: Sequence[int] = (1, 2, 4),
    batch_size: int = 64,
    publish_batch: int | None = 100,
    progress: Callable[[str], None] = lambda _: None,
) -> W1Postgres:
    """W1 in databases made on ``server`` and dropped after; ``progress`` hears of each part as it starts."""
    runs = events * len(HANDLERS)
    tag = uuid.uuid4().hex[:8]
    template, created = f"flowbus_w1_{tag}", []
    many_s = many_cpu = None
    drains = []
    admin = psycopg.connect(server, autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{template}"')
        created.append(template)
        progress(f"publishing {events:,} events, one commit each")
        publish_s, publish_cpu = asyncio.run(publish_events(database(server, template), events))
        if publish_batch is not None:
            many_db = f"flowbus_w1_{tag}_many"
            admin.execute(f'CREATE DATABASE "{many_db}"')
            created.append(many_db)
            progress(f"publishing {events:,} events, {publish_batch} a commit")
            many_s, many_cpu = asyncio.run(publish_events(database(server, many_db), events, publish_batch))
        ceiling_db = f"flowbus_w1_{tag}_ceiling"
        admin.execute(f'CREATE DATABASE "{ceiling_db}" TEMPLATE "{template}"')
        created.append(ceiling_db)
        progress("the raw ceiling")
        ceiling_publish_s, ceiling_handle_s = ceiling(database(server, ceiling_db), events, batch_size)
        for count in workers:
            name = f"flowbus_w1_{tag}_{count}"
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            created.append(name)
            progress(f"draining with {count} worker process" + ("es" if count > 1 else ""))
            drains.append(drain(database(server, name), count, runs, batch_size))
    finally:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return W1Postgres(
        events=events, handler_runs=runs, batch_size=batch_size,
        publish_s=publish_s, publish_cpu_s=publish_cpu,
        publish_batch=publish_batch, publish_many_s=many_s, publish_many_cpu_s=many_cpu,
        ceiling_publish_s=ceiling_publish_s, ceiling_handle_s=ceiling_handle_s, drains=tuple(drains),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--publish-batch", type=int, default=100, help="events a commit for publish_many")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    w1 = measure(
        args.server, args.events, [int(w) for w in args.workers.split(",")], args.batch_size, args.publish_batch
    )
    n = w1.events
    print(f"W1 on PostgreSQL: {n:,} events x {len(HANDLERS)} async handlers, batch {w1.batch_size}")
    print(
        f"publish: {n / w1.publish_s:,.0f} events/s, {w1.publish_cpu_s / n * 1e6:,.0f} CPU-µs/event (one commit per event)"
    )
    if w1.publish_many_s is not None and w1.publish_many_cpu_s is not None:
        print(
            f"publish_many: {n / w1.publish_many_s:,.0f} events/s, {w1.publish_many_cpu_s / n * 1e6:,.0f} CPU-µs/event "
            f"({w1.publish_batch} events a commit)"
        )
    print(
        f"{'':24}{'handler runs/s':>16}{'of ceiling':>12}{'vs 1 worker':>13}{'worker CPU-µs/run':>19}"
        f"{'steady-middle CPU-µs/run':>26}"
    )
    one = None
    for found in w1.drains:
        rate = w1.drain_runs_per_s(found)
        one = one or rate
        label = f"{found.workers} worker process" + ("es" if found.workers > 1 else "")
        steady = f"{found.steady.cpu_us_per_run:>26,.0f}" if found.steady is not None else f"{'too short':>26}"
        print(
            f"{label:24}{rate:>16,.0f}{rate / w1.ceiling_drain_runs_per_s:>12.1%}{rate / one:>13.2f}"
            f"{found.cpu_s / w1.handler_runs * 1e6:>19,.0f}{steady}"
        )
    print(f"{'raw PostgreSQL ceiling':24}{w1.ceiling_drain_runs_per_s:>16,.0f}{'100.0%':>12}")
    print(
        f"worker CPU-µs/run: the processes' whole CPU over every run, start-up included; steady-middle: their CPU "
        f"from {STEADY_FROM:.0%} to {STEADY_TO:.0%} of the runs finished, over the runs in between"
    )


if __name__ == "__main__":
    main()
