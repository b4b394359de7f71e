"""Every figure of flowbus's per-run cost in one table, each beside its goal: W1 on SQLite with 1
worker process, W1 on PostgreSQL with 1 and 4, light load on SQLite and on PostgreSQL in one
process and between processes, and publishing in memory. Each figure comes from the benchmark that prints it alone
(bench_w1_sqlite.py, bench_w1_postgres.py, bench_light_load.py, bench_engine.py); the raw ceilings
and the plain-Python baseline are measured in the same run, so read the ratios beside the figures.

    python benchmarks/bench_all.py [--events 10000] [--postgres URL] [--quick]

Without a PostgreSQL server to reach, the SQLite and in-memory figures are printed and the table
says why PostgreSQL was skipped. Progress goes to stderr as each part runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import bench_engine
import bench_light_load
import bench_w1_sqlite
from bench_w1_sqlite import HANDLERS, STEADY_FROM, STEADY_TO

if TYPE_CHECKING:
    # imported where it runs: without psycopg, the rest is still measured
    from bench_w1_postgres import W1Postgres

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
#: worker CPU per handler run over the steady middle of the drain, in microseconds
SQLITE_CPU_US = 40.0
POSTGRES_CPU_US = 70.0
#: end to end on SQLite with 1 worker, as a fraction of the raw ceiling's end to end
SQLITE_END_TO_END_OF_CEILING = 0.40
#: the drain on PostgreSQL with 4 workers, as a fraction of the raw ceiling's drain
POSTGRES_4_WORKERS_OF_CEILING = 0.60
#: light load: send returned to handler run finished, 99th percentile, in milliseconds
IN_PROCESS_P99_MS = 10.0
BETWEEN_PROCESSES_P99_MS = 25.0
LIGHT_LOAD_RATE = 50.0
#: handler runs a second of the engine in memory
IN_MEMORY_RUNS_PER_S = 100_000.0
POSTGRES_WORKERS = (1, 4)


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str = ""
    goal: str = ""
    #: whether the goal is met; None for a figure without a goal
    met: bool | None = None


def heading(text: str) -> Row:
    return Row(text)


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def steady_row(label: str, steady: bench_w1_sqlite.SteadyMiddle | None, goal_us: float) -> Row:
    if steady is None:
        # not measured rather than missed: the drain ended before a second reading fell in its middle
        return Row(label, "too short", f"<= {goal_us:.0f} µs")
    us = steady.cpu_us_per_run
    return Row(label, f"{us:,.1f} µs", f"<= {goal_us:.0f} µs", us <= goal_us)


def sqlite_rows(w1: bench_w1_sqlite.W1Sqlite) -> list[Row]:
    end_to_end_of = w1.end_to_end_runs_per_s / w1.ceiling_end_to_end_runs_per_s
    # the ceiling appends its events a batch a commit: the like-for-like end to end publishes so too
    batched_of = w1.end_to_end_batched_runs_per_s / w1.ceiling_end_to_end_runs_per_s
    return [
        heading(f"W1 on SQLite, 1 worker process ({w1.events:,} events x {len(HANDLERS)} async handlers)"),
        steady_row("  worker CPU per handler run", w1.drain.steady, SQLITE_CPU_US),
        Row("  publish, 1 commit per event (events)", rate(w1.publish_events_per_s)),
        Row("  handler runs, drain", rate(w1.drain_runs_per_s)),
        Row("    raw SQLite ceiling, drain", rate(w1.ceiling_drain_runs_per_s)),
        Row("    of the ceiling", f"{w1.drain_runs_per_s / w1.ceiling_drain_runs_per_s:.1%}"),
        Row("  raw SQLite ceiling, end to end", rate(w1.ceiling_end_to_end_runs_per_s)),
        Row("  handler runs, end to end, publish 1 commit per event", rate(w1.end_to_end_runs_per_s)),
        Row("    of the ceiling", f"{end_to_end_of:.1%}"),
        Row(f"  publish_many, {w1.batch_size} a commit (events)", rate(w1.publish_batched_events_per_s)),
        Row(
            f"  handler runs, end to end, publish_many {w1.batch_size} a commit", rate(w1.end_to_end_batched_runs_per_s)
        ),
        Row(
            "    of the ceiling (which appends as many a commit)",
            f"{batched_of:.1%}",
            f">= {SQLITE_END_TO_END_OF_CEILING:.0%}",
            batched_of >= SQLITE_END_TO_END_OF_CEILING,
        ),
    ]


def postgres_rows(w1: W1Postgres) -> list[Row]:
    rows = [
        heading(f"W1 on PostgreSQL ({w1.events:,} events x {len(HANDLERS)} async handlers)"),
        Row("  publish, 1 commit per event (events)", rate(w1.publish_events_per_s)),
        Row("  raw PostgreSQL ceiling, drain", rate(w1.ceiling_drain_runs_per_s)),
        Row("  raw PostgreSQL ceiling, end to end", rate(w1.ceiling_end_to_end_runs_per_s)),
    ]
    for drain in w1.drains:
        label = f"  {drain.workers} worker process" + ("es" if drain.workers > 1 else "")
        drain_of = w1.drain_runs_per_s(drain) / w1.ceiling_drain_runs_per_s
        goal, met = "", None
        if drain.workers == 4:
            goal, met = f">= {POSTGRES_4_WORKERS_OF_CEILING:.0%}", drain_of >= POSTGRES_4_WORKERS_OF_CEILING
        rows += [
            heading(label),
            steady_row("    worker CPU per handler run", drain.steady, POSTGRES_CPU_US),
            Row("    handler runs, drain", rate(w1.drain_runs_per_s(drain))),
            Row("      of the ceiling", f"{drain_of:.1%}", goal, met),
            Row("    handler runs, end to end", rate(w1.end_to_end_runs_per_s(drain))),
            Row(
                "      of the ceiling",
                f"{w1.end_to_end_runs_per_s(drain) / w1.ceiling_end_to_end_runs_per_s:.1%}",
            ),
        ]
    return rows


def light_load_rows(light: bench_light_load.LightLoad) -> list[Row]:
    """Its p99 beside the goal on SQLite, where the goal is set; on PostgreSQL, for the record."""
    local, remote = light.in_process, light.between_processes
    goals = light.database == "SQLite"
    return [
        heading(
            f"light load on {light.database}, {light.events} events at {light.rate:g}/s, "
            "send returned -> handler run finished"
        ),
        Row("  in one process, p50", f"{local.p50_ms:.1f} ms"),
        Row("  in one process, p99", f"{local.p99_ms:.1f} ms", f"<= {IN_PROCESS_P99_MS:g} ms" if goals else "",
            local.p99_ms <= IN_PROCESS_P99_MS if goals else None),
        Row("  between processes, p50", f"{remote.p50_ms:.1f} ms"),
        Row("  between processes, p99", f"{remote.p99_ms:.1f} ms",
            f"<= {BETWEEN_PROCESSES_P99_MS:g} ms" if goals else "",
            remote.p99_ms <= BETWEEN_PROCESSES_P99_MS if goals else None),
    ]  # fmt: skip


def in_memory_rows(memory: bench_engine.InMemory) -> list[Row]:
    return [
        heading(
            f"in memory ({memory.events:,} events x {len(bench_engine.HANDLERS)} handlers, median of {memory.repeats})"
        ),
        Row(
            "  handler runs, flowbus Engine",
            rate(memory.engine_runs_per_s),
            f">= {IN_MEMORY_RUNS_PER_S:,.0f}/s",
            memory.engine_runs_per_s >= IN_MEMORY_RUNS_PER_S,
        ),
        Row("  handler runs, plain-Python baseline", rate(memory.baseline_runs_per_s)),
        Row("  of the baseline", f"{memory.of_baseline:.1%}"),
        Row("  Engine CPU per handler run", f"{memory.engine_cpu_s / memory.handler_runs * 1e6:,.1f} µs"),
    ]


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def postgres_unreachable(url: str) -> str | None:
    """Why PostgreSQL cannot be measured, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install flowbus[postgres])"
    try:
        with psycopg.connect(url, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        # the error names the host and port; the URL may hold a password
        return f"cannot connect: {first_line(exc)}"


def table(rows: list[Row]) -> str:
    width = max(len(row.figure) for row in rows if row.measured) + 2
    lines = [f"{'figure':{width}}{'measured':>14}{'goal':>16}{'met':>6}"]
    for row in rows:
        if not row.measured:
            lines.append(row.figure)
            continue
        met = "" if row.met is None else ("yes" if row.met else "no")
        lines.append(f"{row.figure:{width}}{row.measured:>14}{row.goal:>16}{met:>6}".rstrip())
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, help="W1 and in-memory events (default 10,000; 4,000 with --quick)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, metavar="URL", help="a server database to make W1's in")
    parser.add_argument("--quick", action="store_true", help="a smaller run: fewer events, shorter light load")
    args = parser.parse_args()
    events = args.events or (4_000 if args.quick else 10_000)
    light_events = 150 if args.quick else 500
    repeats = 1 if args.quick else 3
    began = time.monotonic()

    def progress(part: str) -> Callable[[str], None]:
        def say(what: str) -> None:
            print(f"[{time.monotonic() - began:5.0f} s] {part}: {what}", file=sys.stderr, flush=True)

        return say

    progress("in memory")(f"publishing {events:,} events, median of {repeats}, beside the plain-Python baseline")
    rows = in_memory_rows(bench_engine.in_memory(events, repeats))

    progress("W1 on SQLite")(f"publishing {events:,} events, draining with 1 worker process, the raw ceiling")
    rows += sqlite_rows(bench_w1_sqlite.measure(events))

    skipped = postgres_unreachable(args.postgres)
    if skipped is None:
        import bench_w1_postgres
        import psycopg

        try:
            postgres = bench_w1_postgres.measure(
                args.postgres, events, POSTGRES_WORKERS, publish_batch=None, progress=progress("W1 on PostgreSQL")
            )
        except psycopg.OperationalError as exc:
            # the server went away mid-way: the other parts are still worth their table
            skipped = f"the server failed while measuring: {first_line(exc)}"
        else:
            rows += postgres_rows(postgres)
    if skipped is not None:
        progress("W1 on PostgreSQL")(f"skipped: {skipped}")
        rows += [heading(f"W1 on PostgreSQL: skipped, {skipped}")]

    light = bench_light_load.measure(light_events, LIGHT_LOAD_RATE, idle_s=0, progress=progress("light load"))
    rows += light_load_rows(light)
    if skipped is None:
        import psycopg

        from flowbus.errors import StoreError

        try:
            light = bench_light_load.measure(
                light_events, LIGHT_LOAD_RATE, idle_s=0, progress=progress("light load"), postgres=args.postgres
            )
        except (psycopg.OperationalError, StoreError, TimeoutError) as exc:
            # the server (or a worker on it) failed mid-way: it has no goal here, the table is still worth it
            rows += [heading(f"light load on PostgreSQL: skipped, the run failed: {first_line(exc)}")]
        else:
            rows += light_load_rows(light)
    progress("done")(f"in {time.monotonic() - began:.0f} s")

    print(
        f"flowbus per-run cost; worker CPU is the worker processes' user + sys from {STEADY_FROM:.0%} "
        f"to {STEADY_TO:.0%} of the handler runs finished, over those runs"
    )
    print(table(rows))
    met = [row.met for row in rows if row.met is not None]
    print(f"goals met: {sum(met)} of {len(met)}" + ("" if skipped is None else " (PostgreSQL's not measured)"))


if __name__ == "__main__":
    main()
