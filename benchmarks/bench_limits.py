"""What flow control costs per handler run: W1 (fan-out, see bench_w1_sqlite.py) run by one
`flowbus worker` process as it is, then with a concurrency key on every handler, then with a
rate limit on every handler (set high enough never to hold a message back), each on a fresh
SQLite file, in the same invocation. Prints CPU per handler run of the worker process (its
start-up, measured apart, taken off) and the ratio of each to the plain workload; and checks that
no message was held back (every handler ran on its first attempt).

    python benchmarks/bench_limits.py [--events 5000] [--batch-size 64] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bench_w1_sqlite import CONFIG, HANDLERS, drain_with_worker, payload, startup_cpu

from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores.sqlite import SqliteBackend

#: what each variant adds to every handler
VARIANTS = {
    "plain W1": "",
    "concurrency key": ', concurrency: {limit: 1000, key: "=event.data.CustomerId"}',
    "rate limit": ', rate_limit: {limit: 1000000, period: 1s, key: "=event.data.CustomerId"}',
}


def config_with(limits: str) -> str:
    return CONFIG.replace("TotalAmount: TotalAmount}}", "TotalAmount: TotalAmount}" + limits + "}")


async def publish_events(db: Path, config: str, n: int) -> None:
    backend = SqliteBackend(db, "w1")
    await publish_config(backend, config, file="w1.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    for i in range(n):
        await engine.publish("OrderPlaced", payload(i))
    await backend.close()


def measure(folder: Path, name: str, limits: str, n: int, batch_size: int) -> tuple[float, float]:
    """CPU seconds per handler run of the worker (start-up taken off), and wall seconds of the drain."""
    db = folder / f"{name.replace(' ', '-')}-{time.monotonic_ns()}.db"
    config = config_with(limits)
    asyncio.run(publish_events(db, config, n))
    runs = n * len(HANDLERS)
    drain_s, cpu_s = drain_with_worker(db, runs, batch_size, "normal")
    start_s = startup_cpu(db)
    with sqlite3.connect(db) as conn:
        [(retried,)] = conn.execute("SELECT count(*) FROM runs WHERE attempt > 1").fetchall()
        [(held,)] = conn.execute("SELECT count(*) FROM flow_rate_limits").fetchall() if limits else [(0,)]
    if retried:
        raise SystemExit(f"{name}: {retried} runs were not first attempts")
    if "rate" in name and not held:
        raise SystemExit(f"{name}: no rate key was kept; the limit did not apply")
    return (cpu_s - start_s) / runs, drain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant, interleaved; the best is shown")
    args = parser.parse_args()
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, limits in VARIANTS.items():
                cpu, wall = measure(Path(tmp), name, limits, args.events, args.batch_size)
                if name not in best or cpu < best[name][0]:
                    best[name] = (cpu, wall)
    runs = args.events * len(HANDLERS)
    print(f"W1 on SQLite: {args.events:,} events x {len(HANDLERS)} async handlers ({runs:,} runs), 1 worker, "
          f"batch {args.batch_size}, best of {args.repeat}")  # fmt: skip
    print(f"{'variant':<18}{'CPU us/run':>12}{'ratio':>8}{'runs/s':>10}")
    baseline = best["plain W1"][0]
    for name, (cpu, wall) in best.items():
        print(f"{name:<18}{cpu * 1e6:>12.0f}{cpu / baseline:>8.3f}{runs / wall:>10,.0f}")


if __name__ == "__main__":
    main()
