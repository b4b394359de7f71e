"""What a user sees of messages flow control holds back: ``throttled`` and ``waiting_for_slot``
in the API's message, its trace, and ``/metrics``."""

from __future__ import annotations

import sqlite3
import textwrap

import pytest

from flowbus.engine import Engine
from flowbus.keys import Scope
from flowbus.publishing import active_config
from flowbus.queue import QueueName

CONFIG = textwrap.dedent("""
    project: {name: shop}
    events:
      - name: Paid
        properties: {CustomerId: {type: String, required: true}}
    flows:
      - name: Mail
        inputs: {CustomerId: {type: String, required: true}}
        steps: [{id: out, action: output, values: {id: "=inputs.CustomerId"}}]
    handlers:
      - name: mail
        event: Paid
        flow: Mail
        bindings: {CustomerId: CustomerId}
        concurrency: {limit: 1, key: "=event.data.CustomerId"}
      - name: sms
        event: Paid
        flow: Mail
        bindings: {CustomerId: CustomerId}
        rate_limit: {limit: 1, period: 1h}
""")
MESSAGES = "/v1/projects/shop/messages"


@pytest.fixture
async def api(serve_api):
    async with serve_api("shop", CONFIG, scopes=(Scope.INGEST, Scope.READ)) as served:
        yield served


async def test_held_messages_show_why_in_the_api_their_trace_and_metrics(api, tmp_path):
    client, auth, store = api
    number, loaded = await active_config(store)
    engine = Engine(loaded, backend=store, config_version=number)
    for _ in range(3):
        await engine.publish("Paid", {"CustomerId": "c1"})
    claimed = await store.claim([QueueName.OUTBOUND], limit=10, owner="w", lease_s=60)
    assert sorted(m.body["handler"] for m in claimed) == ["mail", "sms"]  # one slot, one turn an hour
    assert await store.claim([QueueName.OUTBOUND], limit=10, owner="w", lease_s=60) == []
    with sqlite3.connect(tmp_path / "flowbus.db") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM messages WHERE state IN ('ready', 'scheduled')")]
    states = {}
    for message_id in ids:
        message = (await client.get(f"{MESSAGES}/{message_id}", headers=auth)).json()
        states.setdefault(message["state"], []).append(message)
    assert sorted((state, len(found)) for state, found in states.items()) == [("throttled", 2), ("waiting_for_slot", 2)]
    [node] = states["throttled"][0]["runs"]
    assert node["kind"] == "throttled" and node["note"].startswith("throttled by its rate limit: admitted at ")
    [node] = states["waiting_for_slot"][0]["runs"]
    assert node["kind"] == "waiting_for_slot"
    assert node["note"] == "waiting for a slot: every slot of its concurrency key 'handler:mail=c1' is taken"
    assert all(m["attempts"] == 0 for found in states.values() for m in found)
    text = (await client.get("/metrics")).text
    assert 'flowbus_messages_held{project="shop",queue="outbound",reason="throttled"} 2.0' in text
    assert 'flowbus_messages_held{project="shop",queue="outbound",reason="waiting_for_slot"} 2.0' in text
