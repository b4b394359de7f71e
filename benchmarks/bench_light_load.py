"""Light load on SQLite or PostgreSQL: events sent at a steady rate, and the time from each send
returning to its handler run finishing (the run's ``started_at`` plus its duration), in two setups:

- in process: a publisher and a worker in one event loop, each with a backend object of its
  own on the same database, as ``flowbus run`` has its HTTP API and its worker;
- between processes: a ``flowbus worker`` subprocess, and the publisher in this process.

Each event goes the ingest path (``Engine.send_event``: an inbound message) and is handled by
one async handler, so it is two hops: the worker publishes it, then runs the handler. Also the
CPU (user + sys) an idle ``flowbus worker`` process uses over a few seconds.

    python benchmarks/bench_light_load.py [--events 500] [--rate 50] [--idle-s 10] [--postgres URL]

On SQLite by default (files in a temporary folder); with ``--postgres``, in databases made on that
server (``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_w1_sqlite import process_cpu_s

from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores import open_backend
from flowbus.worker import Worker

PROJECT = "light"
CONFIG = """
project: {name: light}
events:
  - name: Ping
    properties:
      Seq: {type: Integer, required: true}
flows:
  - name: Pong
    inputs: {Seq: {type: Integer, required: true}}
    steps:
      - {id: write, action: save, entity: Pong, data: {id: "=string(inputs.Seq)", seq: "=inputs.Seq"}}
handlers:
  - {name: Pong, event: Ping, flow: Pong, mode: async, bindings: {Seq: Seq}}
"""
#: events sent, and handled, before the measured ones: the worker's start-up is not measured
WARM_UP = 5


async def open_engine(db: str) -> Engine:
    """An engine on the config active in the database at the URL ``db``."""
    backend = open_backend(db, PROJECT)
    active = await active_config(backend)
    if active is None:
        raise SystemExit("no config is active in the benchmark's database")
    number, loaded = active
    return Engine(loaded, backend=backend, config_version=number)


async def publish_steadily(engine: Engine, first: int, n: int, rate: float) -> dict[int, float]:
    """Send events ``first`` .. ``first + n - 1`` at ``rate`` a second, on a fixed schedule (a late
    send does not push back the next); the wall-clock time each send returned, by sequence number."""
    sent: dict[int, float] = {}
    start = time.monotonic()
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await engine.send_event("Ping", {"Seq": first + i}, source="bench")
        sent[first + i] = time.time()
    return sent


def handled_at(db: str) -> dict[int, float]:
    """The wall-clock time each handler run finished, by the event's sequence number."""
    query = "SELECT inputs, started_at, duration_s FROM runs WHERE project = {} AND trigger = 'handler'"
    found: list[Any]
    if db.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
            found = conn.execute(query.format("?"), (PROJECT,)).fetchall()
    else:
        import psycopg

        with psycopg.connect(db) as conn:
            found = conn.execute(query.format("%s"), (PROJECT,)).fetchall()
    return {json.loads(inputs)["Seq"]: _time(at).timestamp() + s for inputs, at, s in found}


def _time(value: str | dt.datetime) -> dt.datetime:
    """A stored time: ISO text in SQLite, a timestamptz in PostgreSQL."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


async def wait_handled(db: str, expected: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(handled_at(db)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(handled_at(db))} of {expected} events handled in {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


def latencies_ms(sent: dict[int, float], db: str) -> list[float]:
    handled = handled_at(db)
    return [(handled[seq] - at) * 1000 for seq, at in sent.items()]


async def measured(publisher: Engine, db: str, n: int, rate: float) -> list[float]:
    """Warm up, then send ``n`` events at ``rate``; each one's milliseconds from send to handled."""
    await publish_steadily(publisher, 0, WARM_UP, rate)
    await wait_handled(db, WARM_UP)
    sent = await publish_steadily(publisher, WARM_UP, n, rate)
    await wait_handled(db, WARM_UP + n)
    return latencies_ms(sent, db)


async def in_process(db: str, n: int, rate: float) -> list[float]:
    publisher, worked = await open_engine(db), await open_engine(db)
    worker = Worker(worked, follow_versions=True)
    working = asyncio.create_task(worker.run())
    try:
        return await measured(publisher, db, n, rate)
    finally:
        worker.stop()
        await working
        await publisher.backend.close()
        await worked.backend.close()


def start_worker(db: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", db, "--project", PROJECT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


async def between_processes(db: str, n: int, rate: float) -> list[float]:
    publisher = await open_engine(db)
    process = start_worker(db)
    try:
        return await measured(publisher, db, n, rate)
    finally:
        stop_worker(process)
        await publisher.backend.close()


async def idle_worker_cpu_s(db: str, idle_s: float) -> float:
    """The CPU an idle ``flowbus worker`` uses over ``idle_s``, once it has handled one event."""
    publisher = await open_engine(db)
    process = start_worker(db)
    try:
        await publisher.send_event("Ping", {"Seq": 0}, source="bench")
        await wait_handled(db, 1)
        await asyncio.sleep(1.0)  # past the idle sleep's growth to its longest
        before = process_cpu_s(process.pid)
        await asyncio.sleep(idle_s)
        return process_cpu_s(process.pid) - before
    finally:
        stop_worker(process)
        await publisher.backend.close()


class Databases:
    """Fresh databases with the config published: SQLite files in a temporary folder, or, given a
    PostgreSQL server's URL, databases made on that server and dropped when done."""

    def __init__(self, folder: Path, postgres: str | None) -> None:
        self.folder = folder
        self.postgres = postgres
        self.tag = uuid.uuid4().hex[:8]
        self.made: list[str] = []

    @property
    def kind(self) -> str:
        return "SQLite" if self.postgres is None else "PostgreSQL"

    async def fresh(self, name: str) -> str:
        if self.postgres is None:
            db = f"sqlite:///{self.folder / name}.db"
        else:
            import psycopg

            database = f"flowbus_light_{self.tag}_{name}"
            with psycopg.connect(self.postgres, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{database}"')
            self.made.append(database)
            db = f"{self.postgres.rpartition('/')[0]}/{database}"
        backend = open_backend(db, PROJECT)
        await publish_config(backend, CONFIG, file="light.yaml")
        await backend.close()
        return db

    def drop(self) -> None:
        if self.postgres is None or not self.made:
            return
        import psycopg

        with psycopg.connect(self.postgres, autocommit=True) as admin:
            for database in self.made:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def databases(postgres: str | None) -> AsyncIterator[Databases]:
    with tempfile.TemporaryDirectory() as tmp:
        made = Databases(Path(tmp), postgres)
        try:
            yield made
        finally:
            made.drop()


def percentile(sorted_ms: Sequence[float], p: float) -> float:
    """The nearest-rank percentile."""
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms) + 0.5) - 1))]


@dataclass(frozen=True, kw_only=True)
class Latencies:
    """Milliseconds from send returned to handler run finished, summarised."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, ms: Sequence[float]) -> Latencies:
        s = sorted(ms)
        return cls(p50_ms=statistics.median(s), p95_ms=percentile(s, 95), p99_ms=percentile(s, 99), max_ms=s[-1])


@dataclass(frozen=True, kw_only=True)
class LightLoad:
    #: SQLite or PostgreSQL
    database: str
    events: int
    rate: float
    #: a publisher and a worker in one event loop, as in ``flowbus run``
    in_process: Latencies
    #: a ``flowbus worker`` subprocess
    between_processes: Latencies
    #: the CPU an idle worker used over ``idle_s``; None when not measured
    idle_s: float
    idle_cpu_s: float | None


async def measure_async(
    n: int, rate: float, idle_s: float, progress: Callable[[str], None], postgres: str | None
) -> LightLoad:
    async with databases(postgres) as made:
        progress(f"{n} events at {rate:g}/s on {made.kind}, publisher and worker in one process")
        local = await in_process(await made.fresh("in_process"), n, rate)
        progress(f"{n} events at {rate:g}/s on {made.kind}, the worker in a process of its own")
        remote = await between_processes(await made.fresh("between"), n, rate)
        idle_cpu = None
        if idle_s:
            progress(f"an idle worker on {made.kind} for {idle_s:g} s")
            idle_cpu = await idle_worker_cpu_s(await made.fresh("idle"), idle_s)
    return LightLoad(
        database=made.kind, events=n, rate=rate, in_process=Latencies.of(local),
        between_processes=Latencies.of(remote), idle_s=idle_s, idle_cpu_s=idle_cpu,
    )  # fmt: skip


def measure(
    n: int = 500,
    rate: float = 50.0,
    idle_s: float = 10.0,
    progress: Callable[[str], None] = lambda _: None,
    postgres: str | None = None,
) -> LightLoad:
    """Light load in one process and between processes, on SQLite, or on PostgreSQL in databases
    made on the server at ``postgres``; ``progress`` hears of each part as it starts."""
    return asyncio.run(measure_async(n, rate, idle_s, progress, postgres))


def row(label: str, latencies: Latencies) -> str:
    cells = [latencies.p50_ms, latencies.p95_ms, latencies.p99_ms, latencies.max_ms]
    return f"{label:22}" + "".join(f"{c:>10.1f}" for c in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="events a second")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU measured over this long (0: not)")
    parser.add_argument("--postgres", metavar="URL", help="measure on PostgreSQL: a server database to make them in")
    args = parser.parse_args()
    try:
        light = measure(args.events, args.rate, args.idle_s, postgres=args.postgres)
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None
    print(
        f"light load on {light.database}: {light.events} events at {light.rate:g}/s, "
        "send returned -> handler run finished (ms)"
    )
    print(f"{'':22}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}")
    print(row("in process", light.in_process))
    print(row("between processes", light.between_processes))
    if light.idle_cpu_s is not None:
        print(f"idle flowbus worker: {light.idle_cpu_s * 1000:.0f} ms CPU (user+sys) in {light.idle_s:g} s")


if __name__ == "__main__":
    main()
