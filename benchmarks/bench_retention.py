"""Retention on SQLite: W1 throughput while the sweeper removes half of a large store, and the
database file over a steady state of work and sweeps.

    python benchmarks/bench_retention.py [--runs 1000000] [--events 3000] [--rounds 12] [--repeat 2]

1. Seed a file with ``--runs`` stored runs (bulk inserts), half of them 45 days old (past the
   default 30 days of ``retention.runs``), half a day old.
2. W1 (see bench_w1_sqlite.py: each OrderPlaced event fans out to 3 async handlers) on a copy of
   that file, drained by an in-process worker twice: without sweeping (the baseline), then with the
   worker's sweeper running beside it, a tick every 50 ms, until the old half is gone. Reported:
   handler runs/s while the sweep runs, CPU (user+sys) per handler run, and the ratios; the sweep
   keeps to its share of the worker's time (``SweepSettings.share``).
3. Steady state: rounds of W1 events, each drained, then swept with a clock set so that what the
   previous rounds wrote is past its age. The database file should stop growing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_w1_sqlite import CONFIG, HANDLERS, payload

from flowbus.config.retention import Retention
from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.retention import Sweeper, SweepSettings
from flowbus.stores.protocols import RetentionKind
from flowbus.stores.sqlite import SqliteBackend, connect
from flowbus.worker import Worker, WorkerSettings

STEPS = '[["write","write","save","succeeded",{"id":"o1"},{"id":"o1"},null,0.0001]]'


def run_id(at_ms: int, n: int) -> str:
    """A valid time-ordered id made at ``at_ms``, told apart by ``n``."""
    return "%08x-%04x-7%03x-8%03x-%012x" % (at_ms >> 16, at_ms & 0xFFFF, (n >> 12) & 0xFFF, n & 0xFFF, n)  # noqa: UP031


def seed(db: Path, runs: int) -> float:
    """``runs`` stored runs, half 45 days old and half a day old; the seconds it took."""
    start = time.perf_counter()
    connect(db).close()  # the schema, as flowbus makes a new file (auto_vacuum = INCREMENTAL)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    now = dt.datetime.now(dt.UTC)
    for age, first in ((dt.timedelta(days=45), 0), (dt.timedelta(days=1), runs // 2)):
        base_ms = int((now - age).timestamp() * 1000)
        count = runs // 2 if first == 0 else runs - runs // 2
        for lo in range(0, count, 50_000):
            rows = []
            for n in range(first + lo, first + min(count, lo + 50_000)):
                at_ms = base_ms + n // 20  # 20 runs a millisecond
                started = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).isoformat()
                rows.append(("w1", run_id(at_ms, n), "Confirm", "handler", "succeeded", started, 0.0001,
                             '{"OrderId":"o1"}', "{}", STEPS, None, "Confirm", None, None, None, 1, 1))  # fmt: skip
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - start


async def engine_on(db: Path, dedup_window_s: float = 300.0) -> Engine:
    backend = SqliteBackend(db, "w1", dedup_window_s=dedup_window_s)
    await publish_config(backend, CONFIG, file="w1.yaml")
    number, loaded = await active_config(backend)
    return Engine(loaded, backend=backend, config_version=number)


async def w1(db: Path, events: int, *, sweep: bool) -> dict[str, float]:
    """Publish ``events``, then drain them with one in-process worker (sweeping or not)."""
    engine = await engine_on(db)
    for i in range(events):
        await engine.publish("OrderPlaced", payload(i))
    # the default sweep, but ticking all the time: it works through its backlog at its share of time
    settings = WorkerSettings(sweep=SweepSettings(every_s=0.05, batches=1_000_000) if sweep else None)
    worker = Worker(engine, settings)
    expected = events * len(HANDLERS)
    before = await _runs_kept(engine)
    cpu0, wall0 = _cpu(), time.perf_counter()
    task = asyncio.create_task(worker.run())
    while worker.processed < expected:
        await asyncio.sleep(0.01)
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    removed_while = (before - await _runs_kept(engine) + expected) if sweep else 0
    worker.stop()
    await task
    # more than none: the sweep ran for the whole of the measured drain
    left_old = await engine.backend.purgeable(RetentionKind.RUNS, dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    await engine.backend.close()
    return {"runs_per_s": expected / wall, "cpu_ms_per_run": 1000 * cpu / expected, "wall_s": wall,
            "removed_while": removed_while, "old_left": left_old}  # fmt: skip


async def steady(db: Path, events: int, rounds: int) -> list[tuple[int, int]]:
    """The sizes of the file and of its WAL (bytes) after each round of W1 work and a sweep. Ages and the
    de-duplication window are a second, so that a few seconds stand for hours of work."""
    engine = await engine_on(db, dedup_window_s=1.0)
    policy = Retention(**{kind.value: dt.timedelta(minutes=10) for kind in RetentionKind})
    # a clock 10 minutes ahead, less 1 s: what is older than a second is past its age
    ahead = dt.timedelta(minutes=10) - dt.timedelta(seconds=1)
    sweeper = Sweeper(engine.backend, lambda: policy, owner="bench", now=lambda: dt.datetime.now(dt.UTC) + ahead,
                      settings=SweepSettings(batches=10_000))  # fmt: skip
    sizes = []
    for _ in range(rounds):
        for i in range(events):
            await engine.publish("OrderPlaced", payload(i))
        await engine.drain()
        await asyncio.sleep(1.1)
        await sweeper.tick()
        wal = Path(f"{db}-wal")
        sizes.append((db.stat().st_size, wal.stat().st_size if wal.exists() else 0))
    await engine.backend.close()
    return sizes


async def _runs_kept(engine: Engine) -> int:
    return next(kept.rows for kept in await engine.backend.kept() if kept.kind is RetentionKind.RUNS)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs stored before W1 runs")
    parser.add_argument("--events", type=int, default=3000, help="W1 events (x3 handler runs)")
    parser.add_argument("--rounds", type=int, default=12, help="rounds of the steady state")
    parser.add_argument("--repeat", type=int, default=2, help="W1 drains of each kind (medians reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.db"
        seed_s = seed(seeded, args.runs)
        print(f"seeded {args.runs:,} runs in {seed_s:.1f} s; file {seeded.stat().st_size / 1e6:.0f} MB")
        trials: dict[str, list[dict[str, float]]] = {"no sweep (baseline)": [], "sweeping": []}
        for trial in range(args.repeat * 2):  # alternated, so that neither always goes first
            name = list(trials)[trial % 2]
            copy = Path(tmp) / "w1.db"
            shutil.copy(seeded, copy)
            trials[name].append(asyncio.run(w1(copy, args.events, sweep=name == "sweeping")))
            for leftover in Path(tmp).glob("w1.db*"):
                leftover.unlink()
        results = {
            name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in trials.items()
        }
        base = results["no sweep (baseline)"]
        print(f"\nW1, {args.events:,} events -> {args.events * 3:,} handler runs, on {args.runs:,} stored runs"
              f" (medians of {args.repeat})")  # fmt: skip
        print(f"{'':<22}{'runs/s':>10}{'ratio':>8}{'CPU ms/run':>12}{'ratio':>8}{'removed meanwhile':>19}"
              f"{'old left at end':>17}")  # fmt: skip
        for name, r in results.items():
            print(f"{name:<22}{r['runs_per_s']:>10,.0f}{r['runs_per_s'] / base['runs_per_s']:>8.2f}"
                  f"{r['cpu_ms_per_run']:>12.3f}{r['cpu_ms_per_run'] / base['cpu_ms_per_run']:>8.2f}"
                  f"{r['removed_while']:>19,.0f}{r['old_left']:>17,.0f}")  # fmt: skip
        sizes = asyncio.run(steady(Path(tmp) / "steady.db", args.events // 3, args.rounds))
        half = len(sizes) // 2
        print(f"\nsteady state, {args.rounds} rounds of {args.events // 3:,} events, each swept: MB by round")
        print("  file: " + " ".join(f"{db / 1e6:.2f}" for db, _ in sizes))
        print("  WAL:  " + " ".join(f"{wal / 1e6:.2f}" for _, wal in sizes))
        grew = max(db for db, _ in sizes[half:]) / max(db for db, _ in sizes[:half])
        print(f"  the file's largest in the second half / its largest in the first half: {grew:.2f}")
        print("  (the WAL is bounded by the checkpoints, not by retention: SQLite reuses it at its largest size)")


if __name__ == "__main__":
    main()
