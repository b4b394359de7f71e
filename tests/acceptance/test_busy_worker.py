"""A worker with a backlog on SQLite, as a real process: it stops on a signal within one batch,
its heartbeat keeps its leases, and beside it in `flowbus run` the API keeps answering.

Every SQLite call returns without suspending, so a worker that never yields by itself would hold
its event loop for as long as the backlog lasts; these tests give it a backlog of many seconds.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores import open_backend
from flowbus.stores.sqlite import SqliteBackend
from flowbus.worker import Worker, WorkerSettings

pytestmark = pytest.mark.slow

#: each message walks a list of this many items, a few milliseconds of work: the backlog lasts
#: tens of seconds, far longer than any bound below
ITEMS = 100
BACKLOG = 5000

#: one trigger flow, Work, whose steps follow
WORK = """
project: {name: busy}
sources: [{name: feed}]
flows:
  - name: Work
    source: feed
    event_type: job
    steps:"""

CONFIG = (
    WORK
    + """
      - id: walk
        action: foreach
        items: "$.items"
        steps:
          - {id: note, action: set, vars: {last: "=item"}}
      - {id: record, action: save, entity: Job, data: {id: "$.n"}}
      - {id: current, action: get, entity: Counter, record_id: all}
      - id: count
        action: save
        entity: Counter
        data: {id: all, done: "=(steps.current == null ? 0 : steps.current.done) + 1"}
"""
)


def fill(db: str, config: Path, *, items: int = ITEMS, backlog: int = BACKLOG) -> None:
    """Publish the config and queue the backlog (in one transaction: it takes a moment only)."""

    async def go() -> None:
        backend = open_backend(db, "busy")
        await publish_config(backend, config.read_text(), file=str(config))
        number, loaded = await active_config(backend)
        engine = Engine(loaded, backend=backend, config_version=number)
        work = list(range(items))
        await backend.send(
            [engine.source_message("feed", "job", {"n": f"j{n}", "items": work}) for n in range(backlog)]
        )
        await backend.close()

    asyncio.run(go())


def count(db: str, sql: str) -> int:
    with sqlite3.connect(db.removeprefix("sqlite:///"), timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def done(db: str) -> int:
    return count(db, "SELECT count(*) FROM messages WHERE state = 'done'")


def start(*args: str, cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """A flowbus process whose output goes to a file (a pipe nobody reads would fill and block it)."""
    log = tempfile.NamedTemporaryFile(prefix="flowbus-busy-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "flowbus", *args], cwd=cwd, stdout=log, stderr=log)
    log.close()
    return process, Path(log.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout_s:.0f} s")
        time.sleep(0.02)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "busy.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_busy_worker_stops_within_a_batch_of_a_signal_losing_and_doubling_nothing(tmp_path, config, sig):
    db = f"sqlite:///{tmp_path / 'busy.db'}"
    fill(db, config)
    process, log = start("worker", "--db", db, "--project", "busy")
    try:
        wait_until(lambda: done(db) > 0, 60, "a first finished message")
        signalled = time.monotonic()
        process.send_signal(sig)
        code = process.wait(timeout=60)
        took_s = time.monotonic() - signalled
    finally:
        process.kill()
        process.wait()
    assert code == 0, log.read_text()
    assert took_s < 5, f"the worker took {took_s:.1f} s to stop"
    finished = done(db)
    assert 0 < finished < BACKLOG
    # the rest is ready again, leased by nobody, with no attempt counted
    assert count(db, "SELECT count(*) FROM messages WHERE state = 'ready' AND attempts = 0") == BACKLOG - finished
    assert count(db, "SELECT count(*) FROM messages WHERE lease_owner IS NOT NULL") == 0
    # one run, one record and one count per finished message: nothing lost, nothing twice
    assert count(db, "SELECT count(*) FROM runs WHERE status = 'succeeded'") == finished
    assert count(db, "SELECT count(*) FROM runs") == finished
    assert count(db, "SELECT count(*) FROM entities WHERE entity = 'Job'") == finished
    assert count(db, "SELECT json_extract(data, '$.done') FROM entities WHERE entity = 'Counter'") == finished
    log.unlink()


SLOW_CONFIG = (
    WORK
    + """
      - {id: think, action: think}
      - {id: record, action: save, entity: Job, data: {id: "$.n"}}
"""
)


async def think(ctx, params):
    """A step of 20 ms of work that never suspends (a CPU-bound custom action)."""
    time.sleep(0.02)
    return None


def test_the_heartbeat_extends_the_leases_of_a_batch_that_outlasts_them(tmp_path):
    """A batch of 64 messages of 20 ms each outlasts a 0.3 s lease: only the heartbeat keeps it.

    A thread reads the leases from the file while the worker works, as another worker would see them.
    """
    path = tmp_path / "busy.db"
    backend = SqliteBackend(path, "busy")
    engine = Engine(load_config_text(SLOW_CONFIG), backend=backend)
    engine.register_action("think", think)
    late: list[float] = []
    extended = 0
    observing = threading.Event()

    def observe() -> None:
        nonlocal extended
        seen: dict[str, float] = {}
        with sqlite3.connect(path, timeout=30) as conn:
            while not observing.wait(0.01):
                now = time.time()
                for message_id, until in conn.execute(
                    "SELECT id, lease_expires_at FROM messages WHERE state = 'leased'"
                ):
                    if until < now:
                        late.append(now - until)
                    extended += message_id in seen and until > seen[message_id]
                    seen[message_id] = until

    async def work() -> int:
        await backend.send([engine.source_message("feed", "job", {"n": f"j{n}"}) for n in range(500)])
        worker = Worker(engine, WorkerSettings(batch_size=64, lease_s=0.3))

        async def stop_after_two_batches() -> None:  # a condition, not a time: a loaded machine is slower
            while worker.processed <= 64:
                await asyncio.sleep(0.05)
            worker.stop()

        stopper = asyncio.create_task(stop_after_two_batches())
        await asyncio.wait_for(worker.run(), timeout=120)
        await stopper
        return worker.processed

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        processed = asyncio.run(work())
    finally:
        observing.set()
        observer.join()
        asyncio.run(backend.close())
    assert not late, f"{len(late)} times a lease was seen run out mid-batch, by up to {max(late):.2f} s"
    assert extended > 0, "no lease was seen extended"
    assert 64 < processed < 500


def test_flowbus_run_answers_its_api_while_its_worker_drains_a_backlog(tmp_path, config):
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    db = f"sqlite:///{tmp_path / 'busy.db'}"
    fill(db, config)
    port = free_port()
    process, log = start("run", str(config), "--db", db, "--port", str(port), cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    took: list[float] = []
    try:
        with httpx.Client(timeout=60) as client:

            def answers() -> bool:
                assert process.poll() is None, log.read_text()
                try:
                    return client.get(f"{base}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(answers, 60, "a first answer of /healthz")
            for _ in range(40):
                start_s = time.perf_counter()
                assert client.get(f"{base}/healthz").status_code == 200
                took.append(time.perf_counter() - start_s)
                time.sleep(0.01)
        draining = BACKLOG - done(db)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        process.kill()
        process.wait()
    assert draining > 0, "the backlog was drained before the API was asked: nothing was measured"
    # a generous bound for a shared machine: one message and one batch commit at most, not the backlog
    assert max(took) < 1.0, f"/healthz took up to {max(took):.2f} s"
    assert 0 < done(db) < BACKLOG
    log.unlink()
