"""How a worker waiting on a SQLite file hears of new work: a commit of the same process wakes it
at once, whatever backend object made it; a commit of another connection shows as a change of
``data_version``; and the waits leave nothing behind."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading

from flowbus.config.versions import ConfigVersion
from flowbus.queue import MessageKind, OutgoingMessage, QueueName
from flowbus.stores.protocols import Manifest
from flowbus.stores.sqlite import SqliteBackend, waits_in_progress

MESSAGE = OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"source": "s"})
#: what a wait that no commit may end is given: a wake of it shows as a result other than None
QUIET_S = 0.3


async def started(*waits: asyncio.Task[str | None]) -> None:
    """Until ``waits`` are registered (each is at its first suspension)."""
    while waits_in_progress() < len(waits):
        await asyncio.sleep(0)


async def test_a_send_wakes_the_waits_on_its_file_and_no_other(tmp_path):
    listener = SqliteBackend(tmp_path / "flowbus.db", "shop")
    sender = SqliteBackend(tmp_path / "flowbus.db", "shop")  # another object, as the API has in `flowbus run`
    other_file = SqliteBackend(tmp_path / "other.db", "shop")
    waiting = asyncio.create_task(listener.wait_for_work(60))
    not_its_file = asyncio.create_task(other_file.wait_for_work(QUIET_S))
    await started(waiting, not_its_file)

    await sender.send([MESSAGE])
    # a timeout would give None after a minute; "work" means the commit woke the wait
    assert await asyncio.wait_for(waiting, 30) == "work"
    assert await not_its_file is None
    for backend in (listener, sender, other_file):
        await backend.close()


async def test_an_announcement_rings_with_its_reason_for_its_project_even_from_another_thread(tmp_path):
    listener = SqliteBackend(tmp_path / "flowbus.db", "shop")
    other_project = SqliteBackend(tmp_path / "flowbus.db", "crm")

    def publish_a_version() -> None:
        async def publish() -> None:
            sender = SqliteBackend(tmp_path / "flowbus.db", "shop")
            version = ConfigVersion(0, "flows: []", "f.yaml", "h", dt.datetime.now(dt.UTC))
            await sender.add_version(version, Manifest(0, {}, {}))
            await sender.project_versions()  # announces "version"
            await sender.close()

        asyncio.run(publish())

    waiting = asyncio.create_task(listener.wait_for_work(60))
    not_its_project = asyncio.create_task(other_project.wait_for_work(QUIET_S))
    await started(waiting, not_its_project)
    thread = threading.Thread(target=publish_a_version)
    thread.start()
    # "version" only comes from the ring: another connection's commit alone reads as "work"
    assert await asyncio.wait_for(waiting, 30) == "version"
    # crm's wait is not rung; the file's change may end it, as "work" (a claim for nothing)
    assert await not_its_project != "version"
    thread.join()
    await listener.close()
    await other_project.close()


async def test_another_connections_commit_ends_the_wait(tmp_path):
    """What a worker in another process sees: nothing rings, the file changed."""
    listener = SqliteBackend(tmp_path / "flowbus.db", "shop")
    waiting = asyncio.create_task(listener.wait_for_work(60))
    await started(waiting)
    with sqlite3.connect(tmp_path / "flowbus.db") as elsewhere:
        elsewhere.execute("CREATE TABLE scratch (x)")
    assert await asyncio.wait_for(waiting, 30) == "work"
    await listener.close()


async def test_a_wait_without_a_commit_times_out_and_a_claim_forgets_what_it_saw(tmp_path):
    listener = SqliteBackend(tmp_path / "flowbus.db", "shop")
    sender = SqliteBackend(tmp_path / "flowbus.db", "shop")
    assert await listener.wait_for_work(0.02) is None
    await sender.send([MESSAGE])  # no wait in progress: nothing rung, but the file changed
    assert await listener.wait_for_work(60) == "work"
    assert await listener.wait_for_work(0.02) is None  # that change was told once
    await sender.send([MESSAGE])
    assert len(await listener.claim([QueueName.INBOUND], limit=10, owner="w", lease_s=30)) == 2
    assert await listener.wait_for_work(0.02) is None  # the claim saw the send: nothing new
    await listener.close()
    await sender.close()


async def test_waits_leave_no_registration_behind(tmp_path):
    backends = [SqliteBackend(tmp_path / "flowbus.db", "shop") for _ in range(3)]
    timed_out = asyncio.create_task(backends[0].wait_for_work(QUIET_S))
    cancelled = asyncio.create_task(backends[1].wait_for_work(60))
    woken = asyncio.create_task(backends[2].wait_for_work(60))
    await started(timed_out, cancelled, woken)
    assert waits_in_progress() == 3
    assert await timed_out is None
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert waits_in_progress() == 1
    await backends[0].send([MESSAGE])
    assert await woken == "work"
    assert waits_in_progress() == 0
    for backend in backends:
        await backend.close()
    assert waits_in_progress() == 0
