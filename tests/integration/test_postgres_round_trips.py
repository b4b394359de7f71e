"""How many times a PostgreSQL write waits for the server: counted in libpq's own trace of the
connection, where every wait is the client's messages followed by the server's answers.

A publish pipelines its whole transaction (BEGIN, the event, its queued messages with their
de-duplication, the NOTIFY and COMMIT), so it waits once however many handlers it feeds.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")

from flowbus.config import load_config_text  # noqa: E402
from flowbus.engine import Engine  # noqa: E402
from flowbus.events.frozen import freeze  # noqa: E402
from flowbus.queue import MessageKind, MessageState, OutgoingMessage, QueueName  # noqa: E402
from flowbus.runtime.changes import Ack, Changeset, EntityWrite  # noqa: E402
from flowbus.stores.postgres import PostgresBackend  # noqa: E402

CONFIG = """
project: {name: shop}
events:
  - name: OrderPlaced
    properties: {OrderId: {type: String, required: true}}
flows:
  - name: Note
    inputs: {OrderId: {type: String, required: true}}
    steps:
      - {id: note, action: save, entity: Note, data: {id: "=inputs.OrderId"}}
handlers:
  - {name: confirm, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId}}
  - {name: pick, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId}}
  - {name: count, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId}}
"""


def statements(trace: str) -> int:
    """The statements a libpq trace sent: its ``Execute`` messages (simple queries aside)."""
    return sum(1 for line in trace.splitlines() if line.startswith("F\t") and "\tExecute\t" in line)


def round_trips(trace: str) -> int:
    """The waits in a libpq trace: each run of client (``F``) lines after server (``B``) lines."""
    waits, last = 0, "B"
    for line in trace.splitlines():
        direction = line.split("\t", 1)[0]
        if direction == "F" and last == "B":
            waits += 1
        if direction in ("F", "B"):
            last = direction
    return waits


@contextlib.asynccontextmanager
async def traced(backend: PostgresBackend) -> AsyncIterator[Callable[[], str]]:
    """Trace the backend's statement connection while the block runs; yields a reader of the
    trace so far."""
    conn = await backend.connection()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace"
        with path.open("w") as out:
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
            try:
                yield path.read_text
            finally:
                conn.pgconn.untrace()


def job(n: int, dedup: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(QueueName.OUTBOUND, MessageKind.HANDLER, {"handler": "h", "event_id": f"e{n}"}, None, dedup)


@pytest.fixture
async def backend(postgres_url):
    backend = PostgresBackend(postgres_url, "shop")
    yield backend
    await backend.close()


async def test_a_publish_feeding_three_handlers_waits_for_the_server_once(backend):
    engine = Engine(load_config_text(CONFIG), backend=backend, config_version=1)
    for n in range(8):  # past psycopg's threshold for preparing a statement: the steady state
        await engine.publish("OrderPlaced", {"OrderId": f"o{n}"})
    async with traced(backend) as trace:
        await engine.publish("OrderPlaced", {"OrderId": "o-counted"})
        assert round_trips(trace()) == 1
    assert await backend.queue_depth() == {(QueueName.OUTBOUND, MessageState.READY): 27}


async def test_sending_waits_once_and_once_more_to_learn_what_duplicates_stand_for(backend):
    await backend.send([job(0, dedup="d0")])
    async with traced(backend) as trace:
        plain = await backend.send([job(n) for n in range(1, 20)])
        assert round_trips(trace()) == 1
        deduplicated = await backend.send([job(n, dedup=f"d{n}") for n in range(20)])
        assert round_trips(trace()) == 1 + 2
    assert len(set(plain)) == 19 and len(set(deduplicated)) == 20
    [first] = await backend.send([job(0, dedup="d0")])
    assert first == deduplicated[0]


async def test_a_worker_s_batch_commits_together_waiting_only_for_its_checks(backend):
    """Ten runs' changesets (a record created, the message acknowledged): one transaction that
    waits for the creations' count, the acknowledgements' count and the commit, not once a run;
    and that sends one statement of each kind, not one a run."""
    await backend.send([job(n) for n in range(10)])
    claimed = await backend.claim([QueueName.OUTBOUND], limit=10, owner="w1", lease_s=30)
    changesets = [
        Changeset(writes={("Note", m.id): EntityWrite(freeze({"id": m.id}), 0)}, acks=[Ack(m.id, "w1")])
        for m in claimed
    ]
    async with traced(backend) as trace:
        assert await backend.apply_many(changesets) == [None] * 10
        assert round_trips(trace()) == 3
        assert statements(trace()) == 5  # BEGIN, the row locks, the records, the acknowledgements, COMMIT
    assert await backend.queue_depth() == {(QueueName.OUTBOUND, MessageState.DONE): 10}


async def test_a_claimed_batch_reads_the_events_of_its_handler_messages_in_one_wait(backend):
    """Twelve handler messages of four events: the worker reads the four events in one statement
    before it runs the batch, not one read an event (nor one a message)."""
    engine = Engine(load_config_text(CONFIG), backend=backend, config_version=1)
    published = [await engine.publish("OrderPlaced", {"OrderId": f"o{n}"}) for n in range(4)]
    claimed = await backend.claim([QueueName.OUTBOUND], limit=12, owner="w1", lease_s=30)
    assert len(claimed) == 12
    runner = engine.runner
    async with traced(backend) as trace:
        await runner.read_events_of(claimed)
        assert (round_trips(trace()), statements(trace())) == (1, 1)
        runs = [run for message in claimed for run in await runner.process(message, engine.begin())]
        assert round_trips(trace()) == 1  # every run found its event without asking the server
    assert sorted(run.event_id for run in runs) == sorted(e.id for e in published for _ in range(3))
    assert all(run.succeeded for run in runs)


async def test_a_debounced_publish_waits_for_the_server_once_too(backend):
    """The burst's upsert needs no answer: it is pipelined with the rest of the publish."""
    debounced = CONFIG.replace(
        "  - {name: count, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId}}",
        "  - {name: count, event: OrderPlaced, flow: Note, mode: async, bindings: {OrderId: OrderId},\n"
        "     debounce: {period: 1m, key: '=event.data.OrderId'}}",
    )
    engine = Engine(load_config_text(debounced), backend=backend, config_version=1)
    for _ in range(8):
        await engine.publish("OrderPlaced", {"OrderId": "same"})
    async with traced(backend) as trace:
        await engine.publish("OrderPlaced", {"OrderId": "same"})
        assert round_trips(trace()) == 1
    assert await backend.queue_depth() == {
        (QueueName.OUTBOUND, MessageState.READY): 18,
        (QueueName.OUTBOUND, MessageState.DEBOUNCED): 1,
    }
