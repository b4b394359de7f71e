"""What a claim costs on a large backlog: wall and CPU time of one claim of 64 messages (then
given back, so that every claim meets the same backlog) with 100,000 ready messages queued, none
of them with a priority or a limit; and the same with every handler message at another priority.
Measures the claim's index use: a claim that walked or sorted the backlog would cost in proportion
to it.

    python benchmarks/bench_claim_backlog.py [--backlog 100000] [--claims 300] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from flowbus.queue import MessageKind, OutgoingMessage, QueueName
from flowbus.stores import open_backend
from flowbus.stores.protocols import Backend

QUEUES = [QueueName.INBOUND, QueueName.OUTBOUND]


async def measure(url: str, backlog: int, claims: int, priority: int | None) -> tuple[float, float]:
    """Wall and CPU seconds per claim of 64 on ``backlog`` ready messages."""
    backend: Backend = open_backend(url, "bench")
    await backend.migrate()
    chunk = 5000
    extra = {} if priority is None else {"priority": priority}
    for start in range(0, backlog, chunk):
        await backend.send([
            OutgoingMessage(QueueName.OUTBOUND, MessageKind.HANDLER, {"handler": "h", "event_id": str(n)}, **extra)
            for n in range(start, min(start + chunk, backlog))
        ])  # fmt: skip
    for _ in range(10):  # warm up
        taken = await backend.claim(QUEUES, limit=64, owner="w", lease_s=30)
        await backend.release([m.id for m in taken], owner="w")
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(claims):
        taken = await backend.claim(QUEUES, limit=64, owner="w", lease_s=30)
        assert len(taken) == 64
        await backend.release([m.id for m in taken], owner="w")
    result = (time.perf_counter() - wall) / claims, (time.process_time() - cpu) / claims
    await backend.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--postgres", help="a PostgreSQL URL of an empty database to measure there too")
    args = parser.parse_args()
    print(f"{'store':<10} {'backlog':>9} {'priority':>9} {'wall µs/claim+release':>22} {'CPU µs':>8}")
    with tempfile.TemporaryDirectory() as folder:
        stores = [("sqlite", lambda n: f"sqlite:///{Path(folder) / f'claim-{n}.db'}")]
        if args.postgres:
            stores.append(("postgres", lambda n: args.postgres))
        for name, url_of in stores:
            for n, priority in enumerate((None, 7)):
                if name == "postgres":
                    _reset(args.postgres)
                try:
                    wall, cpu = asyncio.run(measure(url_of(n), args.backlog, args.claims, priority))
                except TypeError:  # a flowbus without priorities
                    continue
                shown = "-" if priority is None else str(priority)
                print(f"{name:<10} {args.backlog:>9,} {shown:>9} {wall * 1e6:>22.0f} {cpu * 1e6:>8.0f}")


def _reset(url: str) -> None:
    """Empty the PostgreSQL database between runs (the benchmark's own tables only)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


if __name__ == "__main__":
    main()
