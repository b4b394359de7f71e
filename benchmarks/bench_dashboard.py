"""The dashboard with a big history: response times of the overview and the runs list with
10,000 and 1,000,000 runs stored, through the real ASGI app (session cookie and all).

    python benchmarks/bench_dashboard.py [--runs 10000,1000000] [--postgres postgresql://postgres@127.0.0.1/postgres]

Every store holds the same last hour (one run a second, 1% failed); the rest of the runs lie in
the 30 days before it. The overview reads only the last hour (a range of the runs' primary key)
and the open and dead messages (partial indexes), so its time should not grow with the history;
the runs list's pages are keyset pages from the primary key, a filter checked on the way. Medians
of 20 requests each; statistics are refreshed after the bulk load, as autovacuum would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from flowbus.api import create_app
from flowbus.events.frozen import freeze
from flowbus.ids import floor_id
from flowbus.keys import Scope, new_key
from flowbus.publishing import publish_config
from flowbus.runtime.changes import Changeset
from flowbus.runtime.records import Run, RunStatus, StepRun, StepStatus, Trigger
from flowbus.stores import open_backend
from flowbus.stores.protocols import Backend

CONFIG = (Path(__file__).resolve().parents[1] / "examples" / "compass" / "flowbus.yaml").read_text()
LAST_HOUR = 3600
BATCH = 20_000
REQUESTS = 20


def runs_at(times: list[dt.datetime], start: int) -> list[Run]:
    step = StepRun("upsert", "upsert", "upsert", StepStatus.SUCCEEDED, freeze({"domain": "a.example"}), freeze({}))
    made = []
    for n, at in enumerate(times, start):
        failed = n % 100 == 0
        made.append(Run(
            id=f"{floor_id(at)[:24]}{n:012x}", flow="compass_company_upsert", trigger=Trigger.MESSAGE,
            status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED, started_at=at,
            duration_s=0.001 + (n % 50) / 10_000, inputs=freeze({"domain": "a.example"}), outputs=freeze({}),
            steps=(step,), error="step 'upsert' failed" if failed else None, config_version=1,
        ))  # fmt: skip
    return made


async def fill(backend: Backend, total: int) -> float:
    """``total`` runs: the last hour's, then the older ones; the seconds it took."""
    began = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    recent = min(total, LAST_HOUR)
    older = total - recent
    span = dt.timedelta(days=30).total_seconds()
    times = [now - dt.timedelta(hours=1) - dt.timedelta(seconds=span * (i + 1) / max(older, 1)) for i in range(older)]
    times += [now - dt.timedelta(seconds=LAST_HOUR * (i + 1) / recent) for i in range(recent)]
    for start in range(0, total, BATCH):
        await backend.apply(Changeset(runs=runs_at(times[start : start + BATCH], start)))
    return time.perf_counter() - began


async def timed(client: httpx.AsyncClient, path: str) -> float:
    """The median milliseconds of ``path`` over :data:`REQUESTS` requests (after one warm-up)."""
    first = await client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    took = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        response = await client.get(path)
        took.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
    return statistics.median(took)


async def measure(url: str, total: int) -> dict[str, float]:
    backend = open_backend(url, "bench")
    await publish_config(backend, CONFIG.replace("name: compass", "name: bench", 1), file="flowbus.yaml")
    key, token = new_key("bench", "bench", (Scope.READ,))
    await backend.add_key(key)
    filled = await fill(backend, total)
    await backend.close()
    analyze(url)
    app = create_app(url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        await client.post("/signin", data={"key": token})
        first = (await client.get("/p/bench/runs")).text
        cursor = re.search(r"cursor=([0-9a-f-]{36})", first).group(1)
        return {
            "fill_s": filled,
            "overview": await timed(client, "/p/bench/"),
            "runs": await timed(client, "/p/bench/runs"),
            "runs page 2": await timed(client, f"/p/bench/runs?cursor={cursor}"),
            "runs failed": await timed(client, "/p/bench/runs?status=failed"),
            # no run matches: the filter walks the whole history (the worst case of a filter)
            "runs none": await timed(client, "/p/bench/runs?status=rejected"),
        }


def analyze(url: str) -> None:
    """Refresh the planner's statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE would
    after a bulk load; without them PostgreSQL plans for an empty table."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("ANALYZE")
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def postgres_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return server.rpartition("/")[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="10000,1000000")
    parser.add_argument("--postgres", help="a PostgreSQL server URL: also measure there (in a scratch database)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.runs.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for total in sizes:
            rows.append(("sqlite", total, asyncio.run(measure(f"sqlite:///{folder}/bench-{total}.db", total))))
    if args.postgres:
        for total in sizes:
            url = postgres_database(args.postgres, f"flowbus_bench_dashboard_{total}")
            rows.append(("postgres", total, asyncio.run(measure(url, total))))
    print(
        f"{'store':<9} {'runs':>10} {'fill s':>8} {'overview ms':>12} {'runs ms':>8} {'page 2 ms':>10} {'failed ms':>10} "
        f"{'no match ms':>12}"
    )
    for store, total, r in rows:
        print(
            f"{store:<9} {total:>10,} {r['fill_s']:>8.1f} {r['overview']:>12.1f} {r['runs']:>8.1f} "
            f"{r['runs page 2']:>10.1f} {r['runs failed']:>10.1f} {r['runs none']:>12.1f}"
        )


if __name__ == "__main__":
    main()
