"""Bounds on an event chain, on every backend: the events one root may cause, and failures that
would repeat on every attempt, dead-lettered at once with their reason."""

from __future__ import annotations

import asyncio
import textwrap

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.queue import MessageState
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.records import RunStatus
from flowbus.worker import Worker, WorkerSettings

#: a handler that publishes its own event twice, async: the runaway fan-out of the issue
RUNAWAY = """
project: {name: shop}
sources: [{name: feed}]
events: [{name: Tick, properties: {n: {type: Integer, required: true}}}]
flows:
  - name: Start
    source: feed
    event_type: go
    steps: [{id: first, action: publish, event: Tick, properties: {n: 0}}]
  - name: Again
    inputs: {n: {type: Integer, required: true}}
    retry: {max_attempts: 5, backoff_s: 0.01, max_backoff_s: 0.02}
    steps:
      - {id: left, action: publish, event: Tick, properties: {n: "=inputs.n + 1"}}
      - {id: right, action: publish, event: Tick, properties: {n: "=inputs.n + 1"}}
handlers:
  - {name: again, event: Tick, flow: Again, mode: async, bindings: {n: n}}
"""


RIGHT = '      - {id: right, action: publish, event: Tick, properties: {n: "=inputs.n + 1"}}'


def engine_on(backend, text: str, **limits: int) -> Engine:
    return Engine(load_config_text(textwrap.dedent(text)), backend=backend, limits=RuntimeLimits(**limits))


async def still_open(engine: Engine) -> int:
    depth = await engine.backend.queue_depth()
    return sum(n for (_, state), n in depth.items() if state in (MessageState.READY, MessageState.LEASED))


async def work_off(engine: Engine, timeout_s: float = 60) -> None:
    """Work with retries on (as `flowbus worker` does) until nothing is left open."""
    worker = Worker(engine, WorkerSettings(batch_size=16))
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await still_open(engine):
        assert asyncio.get_running_loop().time() < deadline, "the work did not end in time"
        if not await worker.run_until_idle():
            await asyncio.sleep(0.01)  # a retry waits out its backoff


async def test_a_runaway_fan_out_stops_at_the_events_its_root_may_cause(backend):
    engine = engine_on(backend, RUNAWAY, max_chain_events=100)
    root = await engine.send("feed", "go", {})
    await work_off(engine)
    # without the bound the depth limit alone lets it grow to 2**17 - 1 events
    events = await backend.count_events()
    assert 98 <= events <= 100
    assert await backend.chain_events(root) == events
    dead = await backend.dead_letters(limit=1000)
    # each an event whose handler could publish no more: dead on its first attempt, with the reason
    assert 0 < len(dead) <= events
    for message in dead:
        assert message.attempts == 1 and len(message.errors) == 1
        assert f"would make root {root} cause more than 100 events (max_chain_events)" in message.errors[0].error


async def test_the_chain_depth_limit_dead_letters_on_the_first_attempt(backend):
    engine = engine_on(backend, RUNAWAY.replace(RIGHT, ""), max_chain_depth=3)
    await engine.send("feed", "go", {})
    await work_off(engine)
    [dead] = await backend.dead_letters()
    assert dead.attempts == 1
    assert "would make an event chain 4 deep; the limit is 3 (max_chain_depth)" in dead.errors[0].error
    assert await backend.count_events() == 3


async def test_a_publish_whose_values_do_not_validate_is_dead_lettered_on_the_first_attempt(backend):
    engine = engine_on(backend, RUNAWAY.replace('properties: {n: "=inputs.n + 1"}', "properties: {n: \"='one'\"}"))
    await engine.send("feed", "go", {})
    await work_off(engine)
    [dead] = await backend.dead_letters()
    assert dead.attempts == 1 and len(dead.errors) == 1
    assert "Tick" in dead.errors[0].error and "n:" in dead.errors[0].error
    [run] = await backend.runs_for_message(dead.id)
    assert run.status is RunStatus.FAILED


SYNC_FAN_OUT = """
project: {name: shop}
sources: [{name: feed}]
events: [{name: Tick, properties: {n: {type: Integer}}}, {name: Tock, properties: {n: {type: Integer}}}]
flows:
  - name: Start
    source: feed
    event_type: go
    steps: [{id: first, action: publish, event: Tick, properties: {n: 0}}]
  - name: Fan
    inputs: {n: {type: Integer}}
    steps:
      - id: each
        action: foreach
        items: "=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]"
        steps: [{id: p, action: publish, event: Tock, properties: {n: "=item"}}]
handlers:
  - {name: fan, event: Tick, flow: Fan, mode: sync, bindings: {n: n}}
"""


async def test_a_sync_handler_past_the_chain_limit_fails_its_publisher_for_good(backend):
    engine = engine_on(backend, SYNC_FAN_OUT, max_chain_events=10)
    root = await engine.send("feed", "go", {})
    await work_off(engine)
    # the whole chain ran in the source message's unit of work: rolled back, dead at once
    [dead] = await backend.dead_letters()
    assert dead.id == root and dead.attempts == 1
    assert f"would make root {root} cause more than 10 events (max_chain_events)" in dead.errors[0].error
    assert await backend.count_events() == 0


async def test_an_ordinary_failure_is_still_retried_until_its_attempts_are_used_up(backend):
    engine = engine_on(backend, RUNAWAY.replace(RIGHT, "      - {id: right, action: fail, message: down}"))
    await engine.send("feed", "go", {})
    await work_off(engine)
    [dead] = await backend.dead_letters()
    assert dead.attempts == 5 and [e.attempt for e in dead.errors] == [1, 2, 3, 4, 5]
