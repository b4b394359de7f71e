"""What the traces of runaway runs cost to store: N poison messages, each run reaching
``max_step_runs`` on every attempt until the message is dead-lettered, on SQLite.

    python benchmarks/bench_trace_bounds.py [--messages 8] [--attempts 5] [--max-step-runs 10000]

Prints the bytes of step JSON stored (the ``steps`` of every run row), the database file's size
and the process's peak memory. A figure of size, not of time: run it before and after a change
to what traces keep. The defaults are a tenth of the case that made traces bounded (8 messages
x 5 attempts x 100,000 step runs: 451 MB of step JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sqlite3
import sys
import tempfile
import textwrap
from pathlib import Path

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.stores.sqlite import SqliteBackend
from flowbus.worker import Worker, WorkerSettings

CONFIG = """
project: {name: traces}
flows:
  - name: runaway
    source: feed
    event_type: batch
    retry: {max_attempts: ATTEMPTS, backoff_s: 0.001, max_backoff_s: 0.001}
    steps:
      - id: rows
        action: foreach
        items: "=data.xs"
        steps:
          - {id: cols, action: foreach, items: "=data.xs", steps: [{id: cell, action: set, vars: {x: "=item"}}]}
"""


async def poison(db: Path, messages: int, attempts: int, max_step_runs: int) -> None:
    backend = SqliteBackend(db, "traces")
    config = load_config_text(textwrap.dedent(CONFIG.replace("ATTEMPTS", str(attempts))))
    engine = Engine(config, backend=backend, limits=RuntimeLimits(max_step_runs=max_step_runs))
    side = int(max_step_runs**0.5) + 1  # side x side cells: more step runs than the limit allows
    for _ in range(messages):
        await engine.send("feed", "batch", {"xs": list(range(side))})
    worker = Worker(engine, WorkerSettings(batch_size=messages))
    while len(await backend.dead_letters(limit=messages + 1)) < messages:
        await worker.run_until_idle()
        await asyncio.sleep(0.002)
    await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--attempts", type=int, default=5)
    parser.add_argument("--max-step-runs", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("flowbus").setLevel(logging.ERROR)  # a dead-lettered message is what this measures
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "traces.db"
        asyncio.run(poison(db, args.messages, args.attempts, args.max_step_runs))
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            runs, step_bytes = conn.execute("SELECT count(*), sum(length(CAST(steps AS BLOB))) FROM runs").fetchone()
        file_bytes = db.stat().st_size
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        f"{args.messages} messages x {args.attempts} attempts, each run reaching max_step_runs={args.max_step_runs:,}"
    )
    print(f"{'runs stored':28}{runs:>14,}")
    print(f"{'step JSON stored':28}{step_bytes / 1e6:>11.2f} MB  ({step_bytes / runs / 1e3:,.1f} kB a run)")
    print(f"{'SQLite file':28}{file_bytes / 1e6:>11.2f} MB")
    print(f"{'peak memory of the process':28}{peak_kib / 1024:>11.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
