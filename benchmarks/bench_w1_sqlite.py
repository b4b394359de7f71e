"""W1 (fan-out) on SQLite: N OrderPlaced events, 3 async handlers each doing trivial store work,
1 worker process. Prints events/s and handler runs/s end to end, beside the raw SQLite ceiling
measured in the same run: the same rows appended in batched transactions on one connection; and
the worker's CPU (user + sys) per handler run over the steady middle of the drain, from when 20%
of the runs had finished to when 80% had, read from /proc while it works.

    python benchmarks/bench_w1_sqlite.py [--events 20000] [--batch-size 64] [--synchronous normal|full]

``--synchronous full`` runs everything (the publisher, the worker, the ceiling) with SQLite's
``synchronous=FULL``, an fsync per commit: what ``sqlite:///f.db?synchronous=full`` chooses.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


async def open_engine(backend: SqliteBackend) -> Engine:
    """An engine on the config active in ``backend``."""
    active = await active_config(backend)
    if active is None:
        raise SystemExit("no config is active in the benchmark's database")
    number, loaded = active
    return Engine(loaded, backend=backend, config_version=number)


async def publish_events(db: Path, n: int, synchronous: str, batch: int = 1) -> float:
    """Seconds to publish ``n`` events: one commit each (``batch`` 1), or ``Engine.publish_many`` of
    ``batch`` events a commit, as the ceiling appends them (and as the HTTP ingress groups them)."""
    backend = SqliteBackend(db, "w1", synchronous=synchronous.upper())
    await publish_config(backend, CONFIG, file="w1.yaml")
    engine = await open_engine(backend)
    start = time.perf_counter()
    if batch == 1:
        for i in range(n):
            await engine.publish("OrderPlaced", payload(i))
    else:
        for lo in range(0, n, batch):
            await engine.publish_many([("OrderPlaced", payload(i)) for i in range(lo, min(lo + batch, n))])
    elapsed = time.perf_counter() - start
    await backend.close()
    return elapsed


#: how often the worker processes' CPU is read while they drain: a read of /proc costs
#: microseconds, and the ticks it counts are 10 ms, so the steady middle's edges are as sharp as
#: the clock allows without the reading slowing the worker it measures
CPU_SAMPLE_S = 0.025
#: how often the database is asked whether every message is done; the drain's seconds come from
#: the runs' own times, so a late answer only lets the worker idle a little longer
DRAINED_CHECK_S = 0.2
#: the steady middle: from when this fraction of the handler runs had finished ...
STEADY_FROM = 0.2
#: ... to when this fraction had
STEADY_TO = 0.8
#: the unit of utime and stime in /proc/<pid>/stat
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads, from /proc."""
    # the command name, in parentheses, may hold spaces: the fields are counted after it
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True, kw_only=True)
class SteadyMiddle:
    """The worker processes' CPU over the steady middle of a drain: from when STEADY_FROM of the
    handler runs had finished to when STEADY_TO had, so neither the start-up (imports, the config
    compiled, the first claims) nor the tail (the last short batches, the shutdown) is counted."""

    cpu_s: float
    handler_runs: int
    seconds: float

    @property
    def cpu_us_per_run(self) -> float:
        return self.cpu_s / self.handler_runs * 1e6


def steady_middle(samples: Sequence[tuple[float, float]], finished_at: Sequence[float]) -> SteadyMiddle | None:
    """The CPU between the first sample at which STEADY_FROM of the runs had finished and the first
    at which STEADY_TO had. ``samples`` are (wall-clock time, CPU seconds) in time order;
    ``finished_at`` the wall-clock time each handler run finished, sorted. None when the drain was
    too short for two samples to fall inside it."""
    total = len(finished_at)
    edges: list[tuple[float, float, int]] = []
    for at, cpu in samples:
        finished = bisect.bisect_right(finished_at, at)
        mark = STEADY_TO if edges else STEADY_FROM
        if finished >= mark * total:
            edges.append((at, cpu, finished))
            if len(edges) == 2:
                break
    if len(edges) < 2 or edges[0][2] >= STEADY_TO * total:
        return None
    (at_from, cpu_from, runs_from), (at_to, cpu_to, runs_to) = edges
    return SteadyMiddle(cpu_s=cpu_to - cpu_from, handler_runs=runs_to - runs_from, seconds=at_to - at_from)


def sample_until_drained(
    processes: Sequence[subprocess.Popen[bytes]], open_messages: Callable[[], int]
) -> list[tuple[float, float]]:
    """Read the processes' summed CPU every CPU_SAMPLE_S until no message is open: (wall-clock
    time, CPU seconds) pairs. How many runs had finished at each is read afterwards from the runs'
    times, so what runs beside the workers while they work is a /proc read, not a query."""
    samples: list[tuple[float, float]] = []
    next_check = time.monotonic()
    while True:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("a worker process stopped before the backlog was drained")
        samples.append((time.time(), sum(process_cpu_s(process.pid) for process in processes)))
        if time.monotonic() >= next_check:
            if not open_messages():
                return samples
            next_check = time.monotonic() + DRAINED_CHECK_S
        time.sleep(CPU_SAMPLE_S)


@dataclass(frozen=True, kw_only=True)
class Drain:
    """One drain of the backlog by worker processes."""

    workers: int
    #: from the first handler run's start to the last one's
    seconds: float
    #: the processes' user + sys CPU, their start-up and shutdown included
    cpu_s: float
    steady: SteadyMiddle | None


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drain_with_worker(db: Path, expected: int, batch_size: int, synchronous: str) -> Drain:
    """Run one `flowbus worker` process until every job is done."""
    cpu_before = children_cpu_s()
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", f"sqlite:///{db}?synchronous={synchronous}",
         "--project", "w1", "--batch-size", str(batch_size)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conn = sqlite3.connect(db, timeout=60)
    try:
        samples = sample_until_drained(
            [process],
            # the partial index of open messages answers this without reading the finished ones
            lambda: conn.execute(
                "SELECT count(*) FROM messages WHERE project = 'w1' AND state IN ('ready', 'leased')"
            ).fetchone()[0],
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    cpu_s = children_cpu_s() - cpu_before
    found = conn.execute(
        "SELECT started_at, duration_s FROM runs WHERE trigger = 'handler' AND status = 'succeeded'"
    ).fetchall()
    conn.close()
    if len(found) != expected:
        raise SystemExit(f"expected {expected} handler runs, found {len(found)}")
    started = sorted(dt.datetime.fromisoformat(at).timestamp() for at, _ in found)
    finished = sorted(dt.datetime.fromisoformat(at).timestamp() + s for at, s in found)
    return Drain(workers=1, seconds=started[-1] - started[0], cpu_s=cpu_s, steady=steady_middle(samples, finished))


def startup_cpu(db: Path) -> float:
    """CPU seconds a `flowbus worker` process spends before it starts working (imports, the
    config compiled, the store opened): one started on the drained database, stopped as soon as
    it says it started. Part of the worker's CPU above, whatever the number of events."""
    cpu_before = children_cpu_s()
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "worker", "--db", f"sqlite:///{db}", "--project", "w1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if process.stderr is None:
        raise SystemExit("the worker's stderr is not piped")
    try:
        for line in process.stderr:
            if "worker started" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    return children_cpu_s() - cpu_before


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


@dataclass(frozen=True, kw_only=True)
class W1Figures:
    """What a W1 run measures on any database: publishing, and the raw ceiling of the same rows."""

    events: int
    handler_runs: int
    batch_size: int
    #: publishing every event, one commit each
    publish_s: float
    #: the ceiling: the same rows appended, then handled, in batched transactions on one connection
    ceiling_publish_s: float
    ceiling_handle_s: float

    @property
    def publish_events_per_s(self) -> float:
        return self.events / self.publish_s

    @property
    def ceiling_drain_runs_per_s(self) -> float:
        return self.handler_runs / self.ceiling_handle_s

    @property
    def ceiling_end_to_end_runs_per_s(self) -> float:
        return self.handler_runs / (self.ceiling_publish_s + self.ceiling_handle_s)


@dataclass(frozen=True, kw_only=True)
class W1Sqlite(W1Figures):
    """The figures of one W1 run on SQLite, beside its raw ceiling."""

    synchronous: str
    #: publishing every event with publish_many, a batch (``batch_size``) a commit, as the ceiling does
    publish_batched_s: float
    drain: Drain
    #: an idle worker's start-up, measured apart
    startup_cpu_s: float

    @property
    def publish_batched_events_per_s(self) -> float:
        return self.events / self.publish_batched_s

    @property
    def drain_runs_per_s(self) -> float:
        return self.handler_runs / self.drain.seconds

    @property
    def end_to_end_runs_per_s(self) -> float:
        return self.handler_runs / (self.publish_s + self.drain.seconds)

    @property
    def end_to_end_batched_runs_per_s(self) -> float:
        """End to end with the events published a batch a commit, as the ceiling appends them: the
        drain is the same, whichever way the same messages were queued."""
        return self.handler_runs / (self.publish_batched_s + self.drain.seconds)


def measure(events: int, batch_size: int = 64, synchronous: str = "normal") -> W1Sqlite:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w1.db"
        publish_s = asyncio.run(publish_events(db, events, synchronous))
        publish_batched_s = asyncio.run(publish_events(Path(tmp) / "batched.db", events, synchronous, batch_size))
        drain = drain_with_worker(db, events * len(HANDLERS), batch_size, synchronous)
        start_cpu_s = startup_cpu(db)
        ceiling_publish_s, ceiling_handle_s = ceiling(Path(tmp) / "ceiling.db", events, batch_size, synchronous)
    return W1Sqlite(
        events=events, handler_runs=events * len(HANDLERS), batch_size=batch_size, synchronous=synchronous,
        publish_s=publish_s, publish_batched_s=publish_batched_s, drain=drain, startup_cpu_s=start_cpu_s,
        ceiling_publish_s=ceiling_publish_s, ceiling_handle_s=ceiling_handle_s,
    )  # fmt: skip


def steady_line(steady: SteadyMiddle | None) -> str:
    if steady is None:
        return "too short a drain for a steady middle: raise --events"
    return (
        f"{steady.cpu_us_per_run:,.0f} us per handler run over the steady middle "
        f"({steady.handler_runs:,} runs in {steady.seconds:.1f} s, from {STEADY_FROM:.0%} to {STEADY_TO:.0%} finished)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--synchronous", choices=("normal", "full"), default="normal")
    args = parser.parse_args()
    w1 = measure(args.events, args.batch_size, args.synchronous)
    n, runs = w1.events, w1.handler_runs
    total_s = w1.publish_s + w1.drain.seconds
    ceiling_total_s = w1.ceiling_publish_s + w1.ceiling_handle_s
    print(
        f"W1 on SQLite: {n:,} events x {len(HANDLERS)} async handlers, 1 worker process, batch {w1.batch_size}, "
        f"synchronous={w1.synchronous}"
    )
    print(f"{'':34}{'events/s':>12}{'handler runs/s':>16}{'of ceiling':>12}")
    print(
        f"{'publish (1 commit per event)':34}{n / w1.publish_s:>12,.0f}{'':>16}{w1.ceiling_publish_s / w1.publish_s:>12.1%}"
    )
    print(
        f"{'worker (handler runs)':34}{'':>12}{w1.drain_runs_per_s:>16,.0f}{w1.ceiling_handle_s / w1.drain.seconds:>12.1%}"
    )
    print(f"{'end to end':34}{n / total_s:>12,.0f}{runs / total_s:>16,.0f}{ceiling_total_s / total_s:>12.1%}")
    batched_s = w1.publish_batched_s + w1.drain.seconds
    print(
        f"{f'publish_many ({w1.batch_size} a commit)':34}{w1.publish_batched_events_per_s:>12,.0f}{'':>16}"
        f"{w1.ceiling_publish_s / w1.publish_batched_s:>12.1%}"
    )
    print(
        f"{'end to end, publish_many':34}{n / batched_s:>12,.0f}{runs / batched_s:>16,.0f}{ceiling_total_s / batched_s:>12.1%}"
    )
    print(
        f"{'raw SQLite ceiling (same rows)':34}{n / ceiling_total_s:>12,.0f}{runs / ceiling_total_s:>16,.0f}{'100.0%':>12}"
    )
    worker_cpu_s = w1.drain.cpu_s
    print(f"worker process CPU: {worker_cpu_s:.2f} s, {worker_cpu_s / runs * 1e6:,.0f} us per handler run")
    working_s = worker_cpu_s - w1.startup_cpu_s
    print(
        f"  of which start-up {w1.startup_cpu_s:.2f} s (an idle worker's, measured apart); "
        f"the rest {working_s / runs * 1e6:,.0f} us per handler run"
    )
    print(f"  {steady_line(w1.drain.steady)}")


if __name__ == "__main__":
    main()
