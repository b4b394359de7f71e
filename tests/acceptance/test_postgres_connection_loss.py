"""PostgreSQL goes away and comes back: the server's own connections are terminated
(``pg_terminate_backend``), or the database refuses connections for a while.

Nothing is restarted: the backend reconnects, the HTTP API answers again, and a worker finishes
every message exactly once with no attempt charged to the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")

from flowbus.engine import Engine  # noqa: E402
from flowbus.errors import StoreError  # noqa: E402
from flowbus.publishing import active_config, publish_config  # noqa: E402
from flowbus.queue import MessageState, QueuedMessage  # noqa: E402
from flowbus.stores.postgres import PostgresBackend  # noqa: E402
from flowbus.worker import Worker, WorkerSettings  # noqa: E402

CONFIG = """
project: {name: shop}
sources: [{name: feed}]
flows:
  - name: Count
    source: feed
    event_type: hit
    retry: {max_attempts: 2, backoff_s: 0.01, max_backoff_s: 0.01}
    steps:
      - {id: seen, action: get, entity: Hit, record_id: "$.n"}
      - {id: between, action: %s}
      - {id: total, action: get, entity: Counter, record_id: c}
      - {id: hit, action: save, entity: Hit, data: {id: "$.n"}}
      - {id: add, action: save, entity: Counter, data: {id: c, n: "=coalesce(steps.total, {'n': 0}).n + 1"}}
"""


def database_of(url: str) -> str:
    return url.rpartition("/")[2]


def terminate_connections(admin: Any, url: str) -> int:
    """Terminate every connection to the test's own database; how many there were."""
    found = admin.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (database_of(url),)
    ).fetchone()
    return int(found[0])


@contextlib.contextmanager
def database_away(admin: Any, url: str) -> Iterator[None]:
    """The test's database refuses every connection, and has none, until the block ends."""
    admin.execute(f'ALTER DATABASE "{database_of(url)}" WITH ALLOW_CONNECTIONS false')
    try:
        terminate_connections(admin, url)
        yield
    finally:
        admin.execute(f'ALTER DATABASE "{database_of(url)}" WITH ALLOW_CONNECTIONS true')


async def first_answer(attempt: Callable[[], Awaitable[Any]], timeout_s: float = 5.0) -> tuple[Any, int, float]:
    """Try ``attempt`` until it answers; its answer, the store errors met first, and the seconds it took."""
    start = time.monotonic()
    errors = 0
    while True:
        try:
            return await attempt(), errors, time.monotonic() - start
        except StoreError:
            errors += 1
            if time.monotonic() - start > timeout_s:
                raise
            await asyncio.sleep(0.01)


async def engine_on(backend: PostgresBackend, between: str = "log, message: between the reads") -> Engine:
    """The engine of the counting config, published; ``between`` is the action between a run's two reads."""
    await publish_config(backend, textwrap.dedent(CONFIG % between), file="count.yaml")
    number, loaded = await active_config(backend)
    return Engine(loaded, backend=backend, config_version=number)


async def counted(url: str) -> int:
    """The counter the runs add one to."""
    backend = PostgresBackend(url, "shop")
    try:
        found = await backend.read_entity("Counter", "c")
    finally:
        await backend.close()
    return 0 if found is None else int(found.record["n"])


def listening(admin: Any, url: str) -> set[int]:
    """The server processes of the connections listening for flowbus's announcements."""
    found = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND query = 'LISTEN flowbus'", (database_of(url),)
    ).fetchall()
    return {row[0] for row in found}


async def heard(listener: PostgresBackend, reason: str) -> bool:
    """Whether the listener hears an announcement of ``reason`` within a few seconds."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if await listener.wait_for_work(0.5) == reason:
            return True
    return False


@pytest.fixture
def admin(postgres_template: tuple[Any, str]) -> Any:
    """A connection to the server, outside the test's database."""
    return postgres_template[0]


@pytest.fixture
async def shop(postgres_url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(postgres_url, "shop")
    yield backend
    await backend.close()


# -- the backend -------------------------------------------------------------------------------


async def test_a_backend_whose_connection_was_terminated_answers_again_at_the_next_statement(admin, postgres_url, shop):
    assert await shop.queue_depth() == {}
    assert terminate_connections(admin, postgres_url) == 1
    depth, errors, _ = await first_answer(shop.queue_depth)
    assert (depth, errors) == ({}, 1)  # only the statement that met the drop failed
    assert await shop.active_version() is None


async def test_a_backend_waits_out_a_database_that_refuses_connections_and_answers_within_seconds_of_its_return(
    admin, postgres_url, shop
):
    await shop.queue_depth()
    with database_away(admin, postgres_url):
        deadline = time.monotonic() + 0.5
        calls = 0
        while time.monotonic() < deadline:  # paced: tried again after a backoff, refused at once meanwhile
            with pytest.raises(StoreError, match="PostgreSQL"):
                await shop.queue_depth()
            calls += 1
            await asyncio.sleep(0.02)
        # 50 ms doubling: a handful of real connects in half a second, however often it was asked
        assert calls >= 10 and shop._reconnects.failures <= 6, (calls, shop._reconnects.failures)
    _, _, took_s = await first_answer(shop.queue_depth)
    assert took_s < 3.0  # the backoff is bounded at 2 s


async def test_a_terminated_listener_listens_again_on_its_new_connection(admin, postgres_url, shop):
    listener = PostgresBackend(postgres_url, "shop")
    try:
        assert await listener.wait_for_work(0.01) is None
        [dropped] = listening(admin, postgres_url)
        assert terminate_connections(admin, postgres_url) == 1
        deadline = time.monotonic() + 5
        while listening(admin, postgres_url) - {dropped} == set():
            # the drop ends a wait as a timeout would, not as an error; the next wait listens again
            assert await listener.wait_for_work(0.05) is None
            assert time.monotonic() < deadline, "the listener did not listen again within 5 s"
        engine = await engine_on(shop)
        assert await heard(listener, "version")  # heard apart: a wait returns on the first announcement
        await engine.send("feed", "hit", {"n": 1})
        assert await heard(listener, "work")
    finally:
        await listener.close()


# -- a worker in process -----------------------------------------------------------------------


async def worked_off(worker: Worker, url: str, message_id: str) -> QueuedMessage:
    """Run ``worker`` until the message is done; the message, as stored then.

    Watched through a backend of its own, so that the worker's is the one to meet a drop.
    """
    watcher = PostgresBackend(url, "shop")
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while (message := (await first_answer(lambda: watcher.get_message(message_id)))[0]).state is not (
            MessageState.DONE
        ):
            assert time.monotonic() < deadline, f"the message was not done within 10 s: {message}"
            await asyncio.sleep(0.02)
    finally:
        await watcher.close()
        worker.stop()
        await task
    return message


async def test_a_connection_lost_in_the_middle_of_a_run_charges_no_attempt_and_the_run_happens_once(
    admin, postgres_url, shop
):
    engine = await engine_on(shop, between="cut")
    cuts: list[int] = []

    async def cut(ctx: Any, params: Any) -> None:
        if not cuts:  # the first run loses the store between its two reads
            cuts.append(terminate_connections(admin, postgres_url))

    engine.register_action("cut", cut)
    message_id = await engine.send("feed", "hit", {"n": 1})
    message = await worked_off(Worker(engine, WorkerSettings(idle_poll_s=0.01, lease_s=30)), postgres_url, message_id)
    assert cuts and cuts[0] >= 1
    assert (message.attempts, message.errors) == (0, ())
    [run] = await shop.runs_for_message(message_id)
    assert run.succeeded and run.attempt == 1
    assert await counted(postgres_url) == 1


async def test_a_heartbeat_that_meets_a_dropped_connection_goes_on_keeping_the_leases_of_a_long_run(
    admin, postgres_url, shop
):
    engine = await engine_on(shop, between="long")
    runs: list[int] = []

    async def long(ctx: Any, params: Any) -> None:
        runs.append(1)
        if len(runs) == 1:
            terminate_connections(admin, postgres_url)  # the heartbeat meets the drop first
            await asyncio.sleep(1.0)  # a run three leases long: only the heartbeat keeps it leased

    engine.register_action("long", long)
    message_id = await engine.send("feed", "hit", {"n": 1})
    message = await worked_off(Worker(engine, WorkerSettings(idle_poll_s=0.01, lease_s=0.3)), postgres_url, message_id)
    assert (message.attempts, message.errors, len(runs)) == (0, (), 1)


# -- the HTTP API ------------------------------------------------------------------------------


async def test_the_api_answers_503_while_the_database_is_away_and_202_again_within_seconds(admin, postgres_url):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from flowbus.api import create_app
    from flowbus.keys import Scope, new_key

    setup = PostgresBackend(postgres_url, "shop")
    await engine_on(setup)
    key, token = new_key("shop", "ingest", (Scope.INGEST,))
    await setup.add_key(key)
    await setup.close()
    app = create_app(postgres_url)
    url = "/v1/projects/shop/sources/feed/events"
    headers = {"Authorization": f"Bearer {token}", "X-Event-Type": "hit"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://flowbus") as client,
    ):

        async def ingest() -> int:
            return (await client.post(url, json={"n": 1}, headers=headers)).status_code

        async def ready() -> int:
            return (await client.get("/readyz")).status_code

        assert (await ingest(), await ready()) == (202, 200)
        with database_away(admin, postgres_url):
            assert (await ingest(), await ready()) == (503, 503)
            assert (await client.get("/healthz")).status_code == 200  # the process recovers by itself
        back = time.monotonic()
        answers = []
        while (answers[-2:] != [202, 200]) and time.monotonic() - back < 5:
            answers += [await ingest(), await ready()]
        assert answers[-2:] == [202, 200]
        assert time.monotonic() - back < 3.0
    assert _count(postgres_url, "SELECT count(*) FROM messages") == answers.count(202) + 1


# -- a worker process --------------------------------------------------------------------------

#: messages drained while the worker's connections are terminated again and again
DRAINED = int(os.environ.get("FLOWBUS_CONNECTION_LOSS_MESSAGES", "200"))


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def _start_worker(url: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    tmp_path.mkdir(exist_ok=True)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowbus", "worker", "--db", url, "--project", "shop",
             "--batch-size", "8", "--lease-s", "30", "--log-level", "debug"],
            stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    return process, log


def _wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert process.poll() is None, f"the worker exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not happen in 30 s:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_worker_whose_connections_are_terminated_again_and_again_finishes_every_message_once_charging_nothing(
    admin, postgres_url, tmp_path
):

    async def prepare() -> None:
        backend = PostgresBackend(postgres_url, "shop")
        engine = await engine_on(backend)
        for n in range(DRAINED):
            await engine.send("feed", "hit", {"n": n})
        await backend.close()

    asyncio.run(prepare())
    open_sql = "SELECT count(*) FROM messages WHERE state IN ('ready', 'leased')"
    process, log = _start_worker(postgres_url, tmp_path)
    try:
        _wait_for(lambda: "worker started" in log.read_text(), "the worker's start", process, log)
        rng = random.Random(20261127)
        kills = 0
        deadline = time.monotonic() + 30
        while _count(postgres_url, open_sql) and kills < 40 and time.monotonic() < deadline:
            assert process.poll() is None, f"the worker exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            time.sleep(rng.uniform(0.02, 0.15))
            kills += terminate_connections(admin, postgres_url) > 0
        _wait_for(lambda: not _count(postgres_url, open_sql), "the drain", process, log)
        assert kills >= 3, "the drain ended before the connections were terminated a few times"

        def done(sql: str) -> int:
            return _count(postgres_url, sql)

        assert done("SELECT count(*) FROM messages WHERE state = 'done'") == DRAINED
        # no attempt charged to the outages, and every message ran exactly once
        assert done("SELECT count(*) FROM messages WHERE attempts <> 0 OR errors <> '[]'") == 0
        assert done("SELECT count(*) FROM runs WHERE status = 'succeeded'") == DRAINED
        assert done("SELECT count(*) FROM runs") == DRAINED
        assert done("SELECT count(*) FROM entities WHERE entity = 'Hit'") == DRAINED
        assert asyncio.run(counted(postgres_url)) == DRAINED
        said = log.read_text().count("the store is unavailable")
        assert 1 <= said <= kills  # said once an outage, not once a retry

        # idle now, once over the last outage: its connections are terminated, and it carries on
        def answered() -> int:
            return log.read_text().count("the store answers again")

        _wait_for(lambda: answered() == said, "the end of the last outage", process, log)
        assert terminate_connections(admin, postgres_url) >= 1
        _wait_for(lambda: answered() > said, "the recovery", process, log)

        async def one_more() -> None:
            backend = PostgresBackend(postgres_url, "shop")
            number, loaded = await active_config(backend)
            await Engine(loaded, backend=backend, config_version=number).send("feed", "hit", {"n": DRAINED})
            await backend.close()

        asyncio.run(one_more())
        _wait_for(
            lambda: done("SELECT count(*) FROM messages WHERE state = 'done'") == DRAINED + 1,
            "the new message",
            process,
            log,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_a_worker_started_while_the_database_is_away_waits_for_it_then_works(admin, postgres_url, tmp_path):
    async def prepare() -> None:
        backend = PostgresBackend(postgres_url, "shop")
        await (await engine_on(backend)).send("feed", "hit", {"n": 1})
        await backend.close()

    asyncio.run(prepare())
    open_sql = "SELECT count(*) FROM messages WHERE state <> 'done'"
    with database_away(admin, postgres_url):
        process, log = _start_worker(postgres_url, tmp_path)
        stopped, stopped_log = _start_worker(postgres_url, tmp_path / "stopped")
        for each, each_log in ((process, log), (stopped, stopped_log)):
            _wait_for(lambda path=each_log: "the store is unavailable" in path.read_text(), "the wait", each, each_log)
        stopped.send_signal(signal.SIGTERM)  # a stop while waiting is a clean stop
        assert stopped.wait(timeout=10) == 0
    try:
        _wait_for(lambda: not _count(postgres_url, open_sql), "the work", process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
    assert log.read_text().count("the store is unavailable") == 1
