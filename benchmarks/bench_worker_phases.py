"""Where a W1 handler run's CPU goes, on SQLite: the worker's thread CPU per handler run, by phase.

One worker, in this process, drains N W1 events (3 async handlers each) published beforehand with
``publish_many``. Each phase is timed with the thread's CPU clock around the calls that make it up,
so the table adds up to the worker's own time per run; the SQL lines are the time spent inside
sqlite3 (binding, SQLite's work, reading rows), the row lines the building of a statement's rows.
Every statement of a store transaction is shown under the batch's commit, which is where W1 makes
them all; a flow whose steps write as they run (a journaled step) would show its writes there too.

    python benchmarks/bench_worker_phases.py [--events 10000] [--batch-size 64]

The timing wraps a few calls by name, so it costs a little itself (the total is a few percent
above ``bench_w1_sqlite.py``'s figure); read it for shares, and for a before and after of one
phase, not as the worker's figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bench_w1_sqlite import HANDLERS, open_engine, publish_events

from flowbus.cli.options import steady_collector
from flowbus.logs import setup_logging
from flowbus.runtime.runner import Runner
from flowbus.stores import rows, sqlite
from flowbus.stores.sqlite import SqliteBackend, SqliteConnector, SqliteTransaction
from flowbus.worker import Worker, WorkerSettings, logger

#: CPU seconds by phase, added up over the drain
spent: Counter[str] = Counter()
#: non-empty while a claim runs: its commit is in its own line, not the batch's
claiming: list[bool] = []


def timed_coroutine(phase: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            spent[phase] += time.thread_time() - start

    return wrapper


def timed(phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[phase] += time.thread_time() - start

    return wrapper


def timed_statements(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A transaction's statement, timed under its query's name."""

    @functools.wraps(fn)
    async def wrapper(self: SqliteTransaction, query: str, params: Any) -> Any:
        start = time.thread_time()
        try:
            return await fn(self, query, params)
        finally:
            spent[f"  SQL {query}"] += time.thread_time() - start

    return wrapper


#: the phases of a batch, each with the parts of it timed apart (a part's time is in its phase's)
PHASES = (
    ("claim", ("  SQL: select, lease, rows read, commit", "  rows read as claimed messages")),
    ("events read for the batch", ()),
    ("runs (flows, steps, run records)", ()),
    ("commit of the batch", ("  rows of run records (JSON)", "  rows of acknowledgements", "  SQL COMMIT")),
    ("log line per run", ()),
)


def instrument() -> None:
    """Wrap the calls each phase is made of (once: :func:`measure` may run again in one process)."""
    if getattr(Worker._claim, "__wrapped__", None) is not None:
        return
    Worker._claim = timed_coroutine("claim", Worker._claim)
    leasing = timed_coroutine("  SQL: select, lease, rows read, commit", SqliteConnector.claim)

    async def claim(self: SqliteConnector, params: Any) -> Any:
        claiming.append(True)
        try:
            return await leasing(self, params)
        finally:
            claiming.pop()

    SqliteConnector.claim = claim
    rows.message = timed("  rows read as claimed messages", rows.message)
    Runner.read_events_of = timed_coroutine("events read for the batch", Runner.read_events_of)
    Worker._process = timed_coroutine("runs (flows, steps, run records)", Worker._process)
    Worker._apply = timed_coroutine("commit of the batch", Worker._apply)
    for name in ("execute", "execute_many", "write_many"):
        setattr(SqliteTransaction, name, timed_statements(getattr(SqliteTransaction, name)))
    rows.run_row = timed("  rows of run records (JSON)", rows.run_row)
    rows.ack_row = timed("  rows of acknowledgements", rows.ack_row)
    logger.info = timed("log line per run", logger.info)
    committing = sqlite.transaction

    @contextlib.contextmanager
    def transaction(conn: Any) -> Iterator[Any]:
        """The store's transaction, its commit timed (the batch's: a claim commits in its own line)."""
        manager = committing(conn)
        tx = manager.__enter__()
        try:
            yield tx
        except BaseException as exc:
            if not manager.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            start = time.thread_time()
            manager.__exit__(None, None, None)
            if not claiming:
                spent["  SQL COMMIT"] += time.thread_time() - start

    sqlite.transaction = transaction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    print(measure(args.events, args.batch_size))


def measure(events: int, batch_size: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w1.db"
        asyncio.run(publish_events(db, events, "normal", batch=64))
        instrument()
        setup_logging("text", "info")
        # the lines go where a service's would, a file, not a terminal that would slow the run
        handler = logging.getLogger("flowbus").handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        with (Path(tmp) / "worker.log").open("w") as log:
            handler.setStream(log)
            steady_collector()
            runs, total_s = asyncio.run(drain(db, batch_size))
    lines = [
        f"W1 on SQLite: {events:,} events x {len(HANDLERS)} async handlers, 1 worker in this process, "
        f"batch {batch_size}: {runs:,} handler runs",
        f"{'thread CPU per handler run':44}{'us':>8}{'share':>8}",
        f"{'the worker in all':44}{total_s / runs * 1e6:>8.1f}{1:>8.0%}",
    ]
    timed_apart = {part for _, parts in PHASES for part in parts}
    statements = sorted((p for p in spent if p.startswith("  SQL ") and p not in timed_apart), key=spent.__getitem__)
    for phase, parts in PHASES:
        shown = (*reversed(statements), *parts) if phase == "commit of the batch" else parts
        for name in (phase, *shown):
            lines.append(f"{name:44}{spent[name] / runs * 1e6:>8.1f}{spent[name] / total_s:>8.0%}")
    rest = total_s - sum(spent[phase] for phase, _ in PHASES)
    lines.append(f"{'the rest (the loop, metrics, log fields)':44}{rest / runs * 1e6:>8.1f}{rest / total_s:>8.0%}")
    return "\n".join(lines)


async def drain(db: Path, batch_size: int) -> tuple[int, float]:
    backend = SqliteBackend(db, "w1")
    engine = await open_engine(backend)
    worker = Worker(engine, WorkerSettings(batch_size=batch_size))
    spent.clear()  # opening the backend migrated and committed: not the drain's
    start = time.thread_time()
    runs = await worker.run_until_idle()
    total_s = time.thread_time() - start
    await backend.close()
    return len(runs), total_s


if __name__ == "__main__":
    main()
