"""A claim admits by the clock it reads once it holds its locks, not the one it read before
waiting for them: else the next claim found the key's turn already come, and a rate of one run
every 2 s let two runs through a few milliseconds apart."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import psycopg

from flowbus.queue import MessageKind, OutgoingMessage, QueueName
from flowbus.stores.postgres import PostgresBackend
from flowbus.stores.sqlite import SqliteBackend

OUT = QueueName.OUTBOUND


def rated(n: int) -> OutgoingMessage:
    body = {"handler": "h", "event_id": f"e{n}"}
    return OutgoingMessage(OUT, MessageKind.HANDLER, body, None, rate_key="handler:h", rate_interval_s=2.0)


async def claimed(backend, owner: str) -> list[str]:
    return [m.body["event_id"] for m in await backend.claim([OUT], limit=1, owner=owner, lease_s=30)]


async def test_on_postgresql_a_claim_that_waited_for_its_key_admits_by_the_clock_after_the_wait(postgres_url):
    backend = PostgresBackend(postgres_url, "shop")
    other = PostgresBackend(postgres_url, "shop")
    await backend.send([rated(1), rated(2)])
    with psycopg.connect(postgres_url, autocommit=True) as holder:  # another claim holding the key
        holder.execute("SELECT pg_advisory_lock(hashtextextended('shop' || chr(31) || 'rhandler:h', 0))")
        first = asyncio.create_task(claimed(backend, "w1"))
        await asyncio.sleep(2.2)  # longer than the interval
        holder.execute("SELECT pg_advisory_unlock_all()")
        assert await first == ["e1"]
    assert await claimed(other, "w2") == []  # the next turn is 2 s after the admission, not before it
    await other.close()
    await backend.close()


async def test_on_sqlite_a_claim_that_waited_for_the_write_lock_admits_by_the_clock_after_the_wait(tmp_path):
    path = tmp_path / "flowbus.db"
    backend = SqliteBackend(path, "shop")
    await backend.send([rated(1), rated(2)])
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another process's write transaction
    threading.Timer(2.2, lambda: writer.execute("COMMIT")).start()
    started = time.monotonic()
    assert await claimed(backend, "w1") == ["e1"]  # it waited for the lock
    assert time.monotonic() - started >= 2.0
    second = SqliteBackend(path, "shop")
    assert await claimed(second, "w2") == []
    await second.close()
    await backend.close()
    writer.close()
