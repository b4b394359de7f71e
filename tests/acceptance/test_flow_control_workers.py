"""Flow control across real worker processes on a real database (a SQLite file, a PostgreSQL server).

Each run of the handler writes when it started and ended to a file (a Python action given to the
workers with ``--actions``); from those times the tests compute the most runs ever seen at once
per concurrency key, and the most runs started in any window of a rate limit's period. Then the
SIGKILL fault test, with a concurrency key: nothing lost, nothing applied twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores import open_backend

pytestmark = pytest.mark.slow

CONFIG = """
project: {{name: limits}}
events:
  - name: Job
    properties:
      Key: {{type: String, required: true}}
      N: {{type: Integer, required: true}}
flows:
  - name: Work
    inputs:
      Key: {{type: String, required: true}}
      N: {{type: Integer, required: true}}
    retry: {{max_attempts: 50, backoff_s: 0.05, max_backoff_s: 0.2}}
    steps:
      - {{id: hold, action: hold, with: {{key: "=inputs.Key", n: "=inputs.N"}}}}
      - {{id: tally, action: get, entity: Tally, record_id: "=inputs.Key"}}
      - id: count
        action: save
        entity: Tally
        data: {{id: "=inputs.Key", runs: "=(steps.tally == null ? 0 : steps.tally.runs) + 1"}}
      - {{id: done, action: save, entity: Done, data: {{id: "=string(inputs.N)", key: "=inputs.Key"}}}}
handlers:
  - name: work
    event: Job
    flow: Work
    bindings: {{Key: Key, N: N}}
    {limits}
"""

ACTIONS = """
import asyncio, json, os, time

async def hold(ctx, params):
    started = time.time()
    await asyncio.sleep({hold_s})
    line = json.dumps({{"key": params["with"]["key"], "n": params["with"]["n"], "start": started,
                       "end": time.time(), "pid": os.getpid()}})
    with open({log!r}, "a") as out:
        out.write(line + "\\n")
    return {{}}

ACTIONS = {{"hold": hold}}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flowbus.db'}"
    return request.getfixturevalue("postgres_url")


def scalar(url: str, sql: str) -> int:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


class Workers:
    """`flowbus worker` processes running the handler's Python action from ``folder``."""

    def __init__(self, db: str, folder: Path) -> None:
        self.db, self.folder = db, folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_of: dict[int, Path] = {}

    def start(self) -> subprocess.Popen[bytes]:
        path = self.folder / f"worker-{len(self.processes)}.log"
        log = path.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "flowbus", "worker", "--db", self.db, "--project", "limits",
             "--batch-size", "1", "--lease-s", "1.5", "--actions", "hold_actions:ACTIONS"],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        log.close()
        self.processes.append(process)
        self.log_of[process.pid] = path
        return process

    def wait_started(self, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
        """Until the worker says it started, so that a SIGTERM finds its handler."""
        deadline = time.monotonic() + timeout_s
        while "worker started" not in self.log_of[process.pid].read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, self.logs()
            time.sleep(0.05)

    def wait_until_done(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while scalar(self.db, "SELECT count(*) FROM messages WHERE state IN ('ready', 'leased', 'scheduled')"):
            assert time.monotonic() < deadline, "the workers did not finish"
            time.sleep(0.1)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.wait_started(process)
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            code = process.wait(timeout=30)
            assert code in (0, -signal.SIGKILL), self.logs()

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-2000:] for path in self.folder.glob("worker-*.log"))


def prepare(db: str, folder: Path, limits: str, jobs: list[tuple[str, int]], hold_s: float) -> Path:
    """Publish the config with the handler's ``limits``, write the action, queue ``jobs``; the
    path of the file the runs write their times to."""
    log = folder / "runs.jsonl"
    (folder / "hold_actions.py").write_text(ACTIONS.format(hold_s=hold_s, log=str(log)))

    async def setup() -> None:
        backend = open_backend(db, "limits")
        await publish_config(backend, CONFIG.format(limits=limits), file="flowbus.yaml")
        number, loaded = await active_config(backend)
        engine = Engine(loaded, backend=backend, config_version=number)
        for key, n in jobs:
            await engine.publish("Job", {"Key": key, "N": n})
        await backend.close()

    asyncio.run(setup())
    return log


def runs_of(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def most_at_once(runs: list[dict]) -> int:
    """The most runs in progress at one moment: a sweep over starts (+1) and ends (-1), an end
    before a start at the same moment."""
    moments = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs], key=lambda m: (m[0], m[1]))
    running = most = 0
    for _, step in moments:
        running += step
        most = max(most, running)
    return most


def test_the_most_runs_at_once_per_key_equals_the_concurrency_limit(database, tmp_path):
    jobs = [(key, n) for n, key in enumerate(["a", "b", "c"] * 10)]
    log = prepare(database, tmp_path, 'concurrency: {limit: 2, key: "=event.data.Key"}', jobs, hold_s=0.15)
    workers = Workers(database, tmp_path)
    for _ in range(6):  # more workers than the slots of one key: only the limit holds them back
        workers.start()
    try:
        workers.wait_until_done()
    finally:
        workers.stop_all()
    runs = runs_of(log)
    assert sorted(r["n"] for r in runs) == list(range(30))
    by_key = defaultdict(list)
    for run in runs:
        by_key[run["key"]].append(run)
    assert {key: most_at_once(found) for key, found in by_key.items()} == {"a": 2, "b": 2, "c": 2}
    assert most_at_once(runs) > 2  # the keys ran side by side: the limit is per key
    assert len({r["pid"] for r in runs}) > 1


#: the time between a claim admitting a message and its run starting, which run start times
#: cannot see (on a busy machine, tens of milliseconds): a window of the period less this is the
#: window the starts are checked in
CLAIM_TO_START_S = 0.1


def test_the_runs_in_any_window_of_the_period_never_exceed_the_rate(database, tmp_path):
    jobs = [("a", n) for n in range(16)]
    log = prepare(database, tmp_path, "rate_limit: {limit: 4, period: 1s}", jobs, hold_s=0.01)
    workers = Workers(database, tmp_path)
    for _ in range(4):
        workers.start()
    try:
        workers.wait_until_done()
    finally:
        workers.stop_all()
    starts = sorted(r["start"] for r in runs_of(log))
    assert len(starts) == 16
    window = 1.0 - CLAIM_TO_START_S
    most = max(sum(1 for s in starts if first <= s < first + window) for first in starts)
    assert most <= 4, starts
    # spread evenly: one run per quarter second, so 16 runs take at least 15 intervals
    assert starts[-1] - starts[0] >= 15 * 0.25 - CLAIM_TO_START_S
    assert all(b - a >= 0.25 - CLAIM_TO_START_S for a, b in itertools.pairwise(starts)), starts
    # held back, not failed: every message ran on its first attempt
    assert scalar(database, "SELECT max(attempt) FROM runs") == 1


def test_sigkill_with_a_concurrency_key_loses_nothing_and_applies_nothing_twice(database, tmp_path):
    keys = [f"k{i}" for i in range(5)]
    jobs = [(keys[n % len(keys)], n) for n in range(200)]
    prepare(database, tmp_path, 'concurrency: {limit: 2, key: "=event.data.Key"}', jobs, hold_s=0.005)
    workers = Workers(database, tmp_path)
    live = [workers.start() for _ in range(3)]
    rng = random.Random(20261127)
    for _ in range(8):  # a worker killed at a random moment, a new one started in its place
        time.sleep(rng.uniform(0.2, 0.8))
        victim = rng.randrange(len(live))
        live[victim].send_signal(signal.SIGKILL)
        live[victim].wait(timeout=30)
        live[victim] = workers.start()
    try:
        workers.wait_until_done()
    finally:
        workers.stop_all()

    async def read() -> tuple[dict, dict]:
        backend = open_backend(database, "limits")
        tallies, done = await backend.entities("Tally"), await backend.entities("Done", limit=1000)
        await backend.close()
        return tallies, done

    tallies, done = asyncio.run(read())
    assert len(done) == 200
    assert {key: record["runs"] for key, record in tallies.items()} == dict.fromkeys(keys, 40)
    assert scalar(database, "SELECT count(*) FROM messages WHERE state = 'dead'") == 0
    assert scalar(database, "SELECT count(DISTINCT event_id) FROM runs WHERE status = 'succeeded'") == 200
