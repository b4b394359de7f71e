"""Group commit at the ingress: concurrent requests' messages share one transaction, and each
request still gets its own ids, its own duplicates and its own errors."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from flowbus.api import create_app
from flowbus.api.batching import SendBatcher
from flowbus.errors import StoreError
from flowbus.keys import Scope, new_key
from flowbus.publishing import publish_config
from flowbus.queue import MessageKind, OutgoingMessage, QueueName
from flowbus.stores.sqlite import SqliteBackend

COMPASS = Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml"
URL = "/v1/projects/compass/sources/compass_inbound/events"
BODY = {"event": "upsert_company", "payload": {"domain": "a.example"}}


class CountingBackend(SqliteBackend):
    """A real SQLite backend that remembers the size of every send (one send: one transaction)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sends: list[int] = []

    async def send(self, messages):
        self.sends.append(len(messages))
        return await super().send(messages)


def message(n: int, dedup: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"n": n}, None, dedup)


@pytest.fixture
async def backend(tmp_path):
    store = CountingBackend(tmp_path / "flowbus.db", "shop")
    yield store
    await store.close()


async def test_concurrent_sends_share_one_transaction_and_get_their_own_ids(backend):
    batcher = SendBatcher(backend)
    answers = await asyncio.gather(*(batcher.send([message(n)]) for n in range(100)))
    assert backend.sends == [100]
    ids = [message_id for [message_id] in answers]
    assert len(set(ids)) == 100
    stored = [(await backend.get_message(message_id)).body["n"] for message_id in ids]
    assert stored == list(range(100))


async def test_batches_are_bounded_and_a_requests_messages_stay_in_order(backend):
    batcher = SendBatcher(backend, max_batch=8)
    answers = await asyncio.gather(*(batcher.send([message(n), message(n + 1000)]) for n in range(10)))
    assert backend.sends == [8, 8, 4]
    for n, (first, second) in enumerate(answers):
        assert (await backend.get_message(first)).body == {"n": n}
        assert (await backend.get_message(second)).body == {"n": n + 1000}


async def test_duplicates_in_one_batch_get_the_first_ones_id(backend):
    batcher = SendBatcher(backend)
    [a], [b], [c] = await asyncio.gather(
        batcher.send([message(1, dedup="k")]), batcher.send([message(2, dedup="k")]), batcher.send([message(3)])
    )
    assert a == b != c
    assert (await backend.get_message(a)).body == {"n": 1}


async def test_a_failed_write_fails_every_request_of_its_batch_and_the_next_batch_goes_on(backend, tmp_path):
    batcher = SendBatcher(backend)
    with sqlite3.connect(tmp_path / "flowbus.db") as other:
        other.execute("ALTER TABLE messages RENAME TO gone")
    results = await asyncio.gather(*(batcher.send([message(n)]) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, StoreError) for r in results), results
    with sqlite3.connect(tmp_path / "flowbus.db") as other:
        other.execute("ALTER TABLE gone RENAME TO messages")
    [later] = await batcher.send([message(9)])
    assert (await backend.get_message(later)).body == {"n": 9}


async def test_a_request_whose_write_fails_fails_alone_and_its_batch_neighbours_are_written(backend):
    batcher = SendBatcher(backend)
    unwritable = OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"n": "\ud800"}, None, None)
    results = await asyncio.gather(
        *(batcher.send([message(n)]) for n in range(20)),
        batcher.send([message(100), unwritable]),
        *(batcher.send([message(n)]) for n in range(20, 40)),
        return_exceptions=True,
    )
    assert isinstance(results[20], UnicodeEncodeError)
    innocent = results[:20] + results[21:]
    assert [(await backend.get_message(message_id)).body["n"] for [message_id] in innocent] == list(range(40))
    assert backend.sends[0] == 42 and len(backend.sends) == 42  # the batch, then each request alone
    assert sum((await backend.queue_depth()).values()) == 40  # nothing of the failed request


async def test_a_request_cancelled_while_waiting_does_not_stop_the_others(backend):
    batcher = SendBatcher(backend)
    leaving = asyncio.ensure_future(batcher.send([message(1)]))
    staying = asyncio.ensure_future(batcher.send([message(2)]))
    await asyncio.sleep(0)  # both are waiting for the write
    leaving.cancel()
    [kept] = await staying
    assert (await backend.get_message(kept)).body == {"n": 2}
    assert leaving.cancelled()


async def test_a_store_that_fails_is_a_503_with_retry_after_never_a_500(tmp_path):
    db = tmp_path / "flowbus.db"
    store = SqliteBackend(db, "compass")
    await publish_config(store, COMPASS.read_text(), file=str(COMPASS))
    key, token = new_key("compass", "web", (Scope.INGEST,))
    await store.add_key(key)
    await store.close()
    app = create_app(f"sqlite:///{db}")
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.post(URL, json=BODY, headers=headers)).status_code == 202
        with sqlite3.connect(db) as other:
            other.execute("ALTER TABLE messages RENAME TO gone")
        refused = await client.post(URL, json=BODY, headers=headers)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json() == {"error": "the store is unavailable; retry later"}
