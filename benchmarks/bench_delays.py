"""What delayed messages cost the messages that are due: CPU per message run through a worker
(claim, run a one-step flow, ack) with 0, 10,000 and 50,000 messages delayed an hour waiting in
the same queue, sent before them. A claim walks the open messages in queue order and passes over
the ones not due; this shows what that walk costs. Also the CPU of one schedule check (the
query each worker makes once a second) when no tick is due.

CPU is user + sys of this process (the worker runs in it) over the measured part only, so the
setup (sending the messages) is not counted; on PostgreSQL the server's own CPU is not in it,
so the wall time per message is shown too. Ratios are to the run without delayed messages,
measured in the same invocation.

    python benchmarks/bench_delays.py [--messages 2000] [--delayed 0,10000,50000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.schedules import fire_due
from flowbus.stores import open_backend
from flowbus.stores.protocols import Backend
from flowbus.worker import Worker, WorkerSettings

CONFIG = """
project: {name: bench}
sources: [{name: feed}]
flows:
  - name: Take
    source: feed
    event_type: item
    steps: [{id: out, action: output, values: {n: "$.n"}}]
  - name: Nightly
    steps: [{id: out, action: output, values: {ok: true}}]
schedules:
  - {name: nightly, cron: "30 2 * * *", run: Nightly}
"""


def cpu() -> float:
    return time.process_time()


async def measure(url: str, messages: int, delayed: int) -> tuple[float, float, float]:
    """CPU seconds per message run, wall seconds per message run, and CPU seconds per schedule
    check, with ``delayed`` messages waiting."""
    backend: Backend = open_backend(url, "bench")
    await publish_config(backend, CONFIG, file="bench.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    chunk = 1000
    for start in range(0, delayed, chunk):
        await backend.send([
            engine.source_message("feed", "item", {"n": n}, not_before=later)
            for n in range(start, min(start + chunk, delayed))
        ])  # fmt: skip
    for start in range(0, messages, chunk):
        await backend.send([
            engine.source_message("feed", "item", {"n": n}) for n in range(start, min(start + chunk, messages))
        ])  # fmt: skip
    worker = Worker(engine, WorkerSettings(batch_size=64, schedules=False))
    began, wall = cpu(), time.perf_counter()
    runs = await worker.run_until_idle()
    per_message, wall_per_message = (cpu() - began) / len(runs), (time.perf_counter() - wall) / len(runs)
    assert len(runs) == messages, (len(runs), messages)
    checks = 200
    await fire_due(backend, engine.plan, number)  # first sight
    began = cpu()
    for _ in range(checks):
        await fire_due(backend, engine.plan, number)
    per_check = (cpu() - began) / checks
    await backend.close()
    return per_message, wall_per_message, per_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--delayed", default="0,10000,50000")
    parser.add_argument("--postgres", help="a PostgreSQL URL of an empty database to measure there too")
    args = parser.parse_args()
    counts = [int(n) for n in args.delayed.split(",")]
    print(
        f"{'store':<10} {'delayed ahead':>13} {'CPU µs/message':>15} {'ratio':>6} {'wall µs/message':>16} "
        f"{'CPU µs/schedule check':>22}"
    )
    with tempfile.TemporaryDirectory() as folder:
        stores = [("sqlite", lambda n: f"sqlite:///{Path(folder) / f'bench-{n}.db'}")]
        if args.postgres:
            stores.append(("postgres", lambda n: args.postgres))
        for name, url_of in stores:
            baseline = None
            for n in counts:
                if name == "postgres":
                    _reset(args.postgres)
                per_message, wall, per_check = asyncio.run(measure(url_of(n), args.messages, n))
                baseline = baseline or per_message
                print(f"{name:<10} {n:>13,} {per_message * 1e6:>15.1f} {per_message / baseline:>6.2f} "
                      f"{wall * 1e6:>16.1f} {per_check * 1e6:>22.1f}")  # fmt: skip


def _reset(url: str) -> None:
    """Empty the PostgreSQL database between runs (the benchmark's own tables only)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


if __name__ == "__main__":
    main()
