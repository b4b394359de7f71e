"""What a published event's handler messages carry of their handlers' flow control (keys worked
out at publish), and how the worker's claims then hold them."""

from __future__ import annotations

import asyncio
import datetime as dt

from flowbus.queue import QueueName

CONFIG = """
events:
  - name: Paid
    properties:
      CustomerId: {type: String}
      Total: {type: Integer}
flows:
  - name: Notify
    concurrency: {limit: 3, key: "=event.data.CustomerId"}
    steps: [{id: l, action: log, message: hi}]
  - name: Bill
    steps: [{id: l, action: log, message: hi}]
handlers:
  - {name: email, event: Paid, flow: Notify}
  - {name: sms, event: Paid, flow: Notify}
  - name: bill
    event: Paid
    flow: Bill
    priority: 9
    concurrency: {limit: 1, key: "=event.data.CustomerId + '/' + string(event.data.Total)"}
    rate_limit: {limit: 10, period: 1s, key: "=event.data.Total > 100"}
  - {name: audit, event: Paid, flow: Bill}
"""


async def messages(engine) -> dict[str, object]:
    taken = await engine.backend.claim([QueueName.OUTBOUND], limit=100, owner="t", lease_s=30)
    return {m.body["handler"]: m for m in taken}


async def test_handler_messages_carry_their_keys_limits_and_priority(engine_for):
    engine = engine_for(CONFIG)
    await engine.publish("Paid", {"CustomerId": "c1", "Total": 250})
    found = await messages(engine)
    assert list(found) == ["bill", "email", "sms", "audit"]  # the priority 9 first, then in queue order
    email, sms, bill, audit = found["email"], found["sms"], found["bill"], found["audit"]
    # limits of a flow: one pool per key shared by every handler that runs the flow
    assert (email.concurrency_key, email.concurrency_limit) == ("flow:Notify=c1", 3)
    assert sms.concurrency_key == email.concurrency_key
    assert (bill.concurrency_key, bill.concurrency_limit, bill.priority) == ("handler:bill=c1/250", 1, 9)
    assert (bill.rate_key, bill.rate_interval_s) == ("handler:bill=true", 0.1)
    assert (audit.concurrency_key, audit.rate_key, audit.priority) == (None, None, 5)


async def test_a_missing_key_value_shares_the_pool_of_runs_without_a_key(engine_for):
    engine = engine_for(CONFIG)
    await engine.publish("Paid", {"Total": 5})  # no CustomerId: the key's value is missing
    found = await messages(engine)
    assert found["email"].concurrency_key == "flow:Notify"
    assert found["bill"].concurrency_key == "handler:bill"  # the expression failed on the missing value


async def test_held_messages_run_once_their_slot_or_turn_comes(engine_for):
    engine = engine_for(CONFIG)
    for _ in range(4):
        await engine.publish("Paid", {"CustomerId": "c1", "Total": 250})
    runs = await engine.drain()  # a drain stops at messages not due: the throttled ones
    assert sorted(r.handler for r in runs) == ["audit"] * 4 + ["bill"] + ["email"] * 4 + ["sms"] * 4
    now = dt.datetime.now(dt.UTC)
    held = [await engine.backend.get_message(m.id) for m in engine.backend.open_messages()]
    assert [m.shown_state(now) for m in held] == ["throttled"] * 3 and all(m.attempts == 0 for m in held)
    later = []
    for _ in range(3):  # one a turn, a tenth of a second apart: no burst
        await asyncio.sleep(0.12)
        later += await engine.drain()
    assert [r.handler for r in later] == ["bill"] * 3
    assert engine.backend.open_messages() == []
