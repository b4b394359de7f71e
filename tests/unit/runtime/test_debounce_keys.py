"""The burst a debounced handler's message joins: the handler and the text of its key's value."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from flowbus.codec import encode
from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.errors import StepFailed
from flowbus.queue import QueueName
from flowbus.stores.memory import MemoryBackend

CONFIG = """
events:
  - name: Changed
    properties: {Name: {type: String}, Count: {type: Integer}}
flows:
  - name: Keep
    inputs: {Name: {type: String}}
    steps: [{id: l, action: log, message: hi}]
handlers:
  - {name: keyed, event: Changed, flow: Keep, bindings: {Name: Name}, debounce: {period: 10ms, key: "%s"}}
  - {name: all, event: Changed, flow: Keep, bindings: {Name: Name}, debounce: {period: 10ms}}
"""


async def bursts(key: str, *events: dict) -> list[str]:
    backend = MemoryBackend("shop")
    engine = Engine(load_config_text(CONFIG % key), backend=backend, config_version=1)
    for properties in events:
        await engine.publish("Changed", properties)
    await asyncio.sleep(0.05)
    claimed = await backend.claim([QueueName.OUTBOUND], limit=100, owner="w", lease_s=30)
    return sorted(f"{m.debounce_key} x{m.debounced}" for m in claimed)


async def test_a_key_s_value_is_its_text_or_json_and_a_handler_without_key_has_one_burst():
    assert await bursts("=coalesce(event.data.Count, null)", {"Count": 7}, {"Count": 7}, {"Name": "x"}) == [
        "all/ x3",
        "keyed/7 x2",
        "keyed/null x1",
    ]
    assert await bursts("=event.data.Name", {"Name": "7"}, {"Name": "7"}) == ["all/ x2", "keyed/7 x2"]


async def test_a_long_value_is_kept_as_its_digest():
    [everything, keyed] = await bursts("=event.data.Name", {"Name": "n" * 500}, {"Name": "n" * 500})
    assert keyed.startswith("keyed/sha256:") and len(keyed) == len("keyed/sha256:") + 64 + len(" x2")
    assert everything == "all/ x2"


async def test_a_key_that_fails_fails_the_publisher_in_flowbus_s_words():
    backend = MemoryBackend("shop")
    engine = Engine(load_config_text(CONFIG % "=event.data.Count"), backend=backend, config_version=1)
    with pytest.raises(StepFailed, match="the debounce key of handler 'keyed' failed on Changed: no field 'Count'"):
        await engine.publish("Changed", {"Name": "no count"})
    assert await backend.count_events() == 0


async def test_a_burst_is_its_fifo_group_s_and_a_long_group_is_kept_as_its_digest():
    backend = MemoryBackend("shop")
    text = CONFIG.replace("period: 10ms", "period: 300ms") % "=event.data.Name"
    engine = Engine(load_config_text(text), backend=backend, config_version=1)
    for group in ("g", "g", "x" * 500, None):
        await engine.send_event("Changed", {"Name": "n/1"}, source="s", group_key=group)
    runs = await engine.drain()  # publishes the events; their bursts wait
    await asyncio.sleep(0.35)
    runs += await engine.drain()  # the bursts, each after its 300 ms
    messages = [await backend.get_message(run.message_id) for run in runs if run.handler is not None]
    digest = "sha256:" + hashlib.sha256(encode("x" * 500).encode()).hexdigest()
    assert sorted(f"{m.debounce_key} x{m.debounced}" for m in messages if m is not None) == sorted(
        [
            'keyed@"g"/n/1 x2',
            'all@"g"/ x2',
            f"keyed@{digest}/n/1 x1",
            f"all@{digest}/ x1",
            "keyed/n/1 x1",
            "all/ x1",
        ]
    )
