"""The worker on every backend: retries, dead letters, rejection, conflicts, durable steps, versions."""

from __future__ import annotations

import asyncio
import logging
import textwrap

import pytest

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.events.frozen import freeze
from flowbus.metrics import PROCESS
from flowbus.publishing import active_config, publish_config
from flowbus.queue import MessageState, QueueName
from flowbus.runtime.changes import Changeset, EntityWrite
from flowbus.runtime.records import RunStatus, StepStatus
from flowbus.worker import Worker, WorkerSettings

CONFIG = """
project: {name: shop}
events:
  - name: Paid
    properties:
      Id: {type: String, required: true}
      Amount: {type: Money, required: true}
flows:
  - name: Book
    inputs: {Id: {type: String, required: true}, Amount: {type: Money}}
    retry: {max_attempts: 3, backoff_s: 0.01, max_backoff_s: 0.02}
    steps:
      - {id: check, action: validate, rules: [{check: "=inputs.Amount < 1000", message: too much}]}
      - {id: book, action: save, entity: Booking, data: {id: "=inputs.Id", amount: "=inputs.Amount"}}
      - {id: tally, action: custom_tally, with: {id: "=inputs.Id"}}
handlers:
  - {name: book, event: Paid, flow: Book, mode: async, bindings: {Id: Id, Amount: Amount}}
"""


def engine_on(backend, text: str = CONFIG) -> Engine:
    engine = Engine(load_config_text(textwrap.dedent(text)), backend=backend, config_version=1)
    engine.register_action("custom_tally", tally)
    return engine


calls: list[str] = []
failures: dict[str, int] = {}


async def tally(ctx, params):
    key = params["with"]["id"]
    calls.append(key)
    if failures.get(key, 0) > 0:
        failures[key] -= 1
        raise RuntimeError(f"tally service down for {key}")
    return {"tallied": key}


def setup_function() -> None:
    calls.clear()
    failures.clear()


async def keep_working(worker: Worker, until=None, timeout_s: float = 5.0):
    """Run the worker (retries wait out their short backoff) until ``until()`` or some runs happened."""
    runs = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        runs += await worker.run_until_idle()
        if (await until()) if until is not None else runs:
            return runs
        await asyncio.sleep(0.01)
    raise AssertionError("the worker did not get there in time")


def fast(**overrides) -> WorkerSettings:
    return WorkerSettings(batch_size=overrides.pop("batch_size", 8), **overrides)


async def test_the_worker_runs_queued_handlers_and_records_the_version(backend):
    engine = engine_on(backend)
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    runs = await Worker(engine, fast()).run_until_idle()
    assert [(r.flow, r.status, r.config_version, r.attempt) for r in runs] == [("Book", RunStatus.SUCCEEDED, 1, 1)]
    assert (await backend.read_entity("Booking", "b1")).record == {"id": "b1", "amount": 10}
    [message] = [m for m in await backend.runs_for_message(runs[0].message_id)]
    assert message.id == runs[0].id


async def test_a_failing_message_is_retried_then_dead_lettered_with_every_error(backend):
    engine = engine_on(backend)
    failures["b1"] = 99
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    worker = Worker(engine, fast())
    await keep_working(worker, until=backend.dead_letters)
    [dead] = await backend.dead_letters()
    assert dead.attempts == 3 and dead.state is MessageState.DEAD
    assert [e.attempt for e in dead.errors] == [1, 2, 3]
    assert all("tally service down for b1" in e.error and e.config_version == 1 for e in dead.errors)
    assert await backend.read_entity("Booking", "b1") is None  # every attempt rolled back
    assert len(await backend.runs_for_message(dead.id)) == 3  # but every attempt is traced

    failures["b1"] = 0  # the fix
    assert await backend.redrive([dead.id]) == 1
    [run] = await worker.run_until_idle()
    assert run.status is RunStatus.SUCCEEDED and run.attempt == 1
    assert (await backend.read_entity("Booking", "b1")).record["id"] == "b1"


async def test_a_poison_message_stores_the_whole_journal_of_its_last_attempt_only(backend):
    engine = engine_on(backend)
    failures["b1"] = 99
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    await keep_working(Worker(engine, fast()), until=backend.dead_letters)
    [dead] = await backend.dead_letters()
    first, second, last = await backend.runs_for_message(dead.id)

    # a retried attempt keeps its record whole, and of its steps a marker and the failing step
    for attempt, run in ((1, first), (2, second)):
        assert (run.attempt, run.status, run.error) == (attempt, RunStatus.FAILED, last.error)
        assert run.duration_s > 0 and run.started_at <= last.started_at
        marker, failed = run.steps
        assert marker.status is StepStatus.CUT and run.steps_cut == 2  # check and book
        assert marker.output == {"$cut": "steps", "count": 2, "reason": "retried attempt"}
        assert (failed.step_id, failed.status) == ("tally", StepStatus.FAILED)
    # the attempt that dead-lettered it keeps every step
    assert last.attempt == 3 and last.steps_cut == 0
    assert [(s.step_id, s.status) for s in last.steps] == [
        ("check", StepStatus.SUCCEEDED), ("book", StepStatus.SUCCEEDED), ("tally", StepStatus.FAILED),
    ]  # fmt: skip


async def test_a_rejected_message_is_not_retried(backend):
    engine = engine_on(backend)
    await engine.publish("Paid", {"Id": "b1", "Amount": 5000})
    [run] = await Worker(engine, fast()).run_until_idle()
    assert (run.status, run.error) == (RunStatus.REJECTED, "too much")
    assert (await backend.get_message(run.message_id)).state is MessageState.DONE
    assert await backend.dead_letters() == []


async def test_a_finished_external_step_is_not_repeated_on_retry(backend):
    text = CONFIG.replace(
        '      - {id: tally, action: custom_tally, with: {id: "=inputs.Id"}}',
        '      - {id: tally, action: custom_tally, with: {id: "=inputs.Id"}}\n'
        '      - {id: after, action: fail, message: "=vars.x"}',
    )
    engine = engine_on(backend, text)
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    worker = Worker(engine, fast())
    [first] = await worker.run_until_idle(max_messages=1)  # one attempt, whatever the backoff
    assert first.status is RunStatus.FAILED and calls == ["b1"]
    # fix the failing step in a new version; the retry must not call the tally service again
    fixed = engine_on(backend)
    worker.engine = fixed
    [second] = await keep_working(worker)
    assert second.status is RunStatus.SUCCEEDED and second.attempt == 2
    assert calls == ["b1"]
    tally_step = next(s for s in second.steps if s.step_id == "tally")
    assert tally_step.status is StepStatus.REPLAYED and tally_step.output == {"tallied": "b1"}


async def test_an_action_that_only_computes_is_not_journaled_and_runs_again_on_retry(backend):
    text = CONFIG.replace(
        '      - {id: tally, action: custom_tally, with: {id: "=inputs.Id"}}',
        '      - {id: tally, action: custom_tally, with: {id: "=inputs.Id"}}\n'
        '      - {id: after, action: fail, message: "=vars.x"}',
    )
    engine = Engine(load_config_text(textwrap.dedent(text)), backend=backend, config_version=1)
    engine.register_action("custom_tally", tally, effects="none")
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    worker = Worker(engine, fast())
    [first] = await worker.run_until_idle(max_messages=1)
    assert first.status is RunStatus.FAILED and calls == ["b1"]
    fixed = Engine(load_config_text(textwrap.dedent(CONFIG)), backend=backend, config_version=1)
    fixed.register_action("custom_tally", tally, effects="none")
    worker.engine = fixed
    [second] = await keep_working(worker)
    assert second.status is RunStatus.SUCCEEDED and second.attempt == 2
    assert calls == ["b1", "b1"]  # nothing journaled: called again
    tally_step = next(s for s in second.steps if s.step_id == "tally")
    assert tally_step.status is StepStatus.SUCCEEDED


async def test_a_write_conflict_is_retried_on_fresh_data(backend):
    text = """
    events: [{name: Hit, properties: {n: {type: Integer, required: true}}}]
    flows:
      - name: Count
        inputs: {n: {type: Integer}}
        retry: {max_attempts: 5, backoff_s: 0.01, max_backoff_s: 0.01}
        steps:
          - {id: current, action: get, entity: Counter, record_id: c}
          - {id: meddle, action: meddle}
          - {id: add, action: save, entity: Counter, data: {id: c, n: "=steps.current.n + inputs.n"}}
    handlers: [{name: count, event: Hit, flow: Count, bindings: {n: n}}]
    """
    engine = Engine(load_config_text(textwrap.dedent(text)), backend=backend)
    meddled = []

    async def meddle(ctx, params):
        if not meddled:  # another writer changes the counter while this run holds its old value
            meddled.append(1)
            await backend.apply(Changeset(writes={("Counter", "c"): EntityWrite(freeze({"id": "c", "n": 100}), None)}))

    engine.register_action("meddle", meddle)
    await backend.apply(Changeset(writes={("Counter", "c"): EntityWrite(freeze({"id": "c", "n": 0}), None)}))
    await engine.publish("Hit", {"n": 1})
    worker = Worker(engine, fast())

    async def settled():
        return (await backend.read_entity("Counter", "c")).record["n"] != 100

    await keep_working(worker, until=settled)
    assert (await backend.read_entity("Counter", "c")).record["n"] == 101  # not 1: the stale write lost


async def test_later_runs_of_a_batch_see_earlier_ones(backend):
    text = """
    events: [{name: Hit, properties: {n: {type: Integer, required: true}}}]
    flows:
      - name: Count
        inputs: {n: {type: Integer}}
        steps:
          - {id: current, action: get, entity: Counter, record_id: c}
          - {id: add, action: save, entity: Counter, data: {id: c, n: "=coalesce(steps.current, {'n': 0}).n + inputs.n"}}
    handlers: [{name: count, event: Hit, flow: Count, bindings: {n: n}}]
    """
    engine = Engine(load_config_text(textwrap.dedent(text)), backend=backend)
    for n in range(1, 11):
        await engine.publish("Hit", {"n": n})
    runs = await Worker(engine, fast(batch_size=64)).run_until_idle()
    assert len(runs) == 10 and all(r.succeeded for r in runs)
    assert (await backend.read_entity("Counter", "c")).record["n"] == 55


async def test_a_worker_switches_to_a_newly_published_version(backend):
    first = textwrap.dedent(CONFIG).replace("custom_tally", "log").replace('with: {id: "=inputs.Id"}', "message: one")
    await publish_config(backend, first, file="v1.yaml")
    number, loaded = await active_config(backend)
    worker = Worker(
        Engine(loaded, backend=backend, config_version=number), fast(version_check_s=0), follow_versions=True
    )
    await worker.engine.publish("Paid", {"Id": "b1", "Amount": 10})
    [run] = await worker.run_until_idle()
    assert run.config_version == 1
    second = first.replace("message: one", "message: two")
    result = await publish_config(backend, second, file="v2.yaml")
    assert result.version.number == 2 and "flows: 1 changed" in result.diff.summary()
    await worker.engine.publish("Paid", {"Id": "b2", "Amount": 10})
    [run] = await worker.run_until_idle()
    assert run.config_version == 2
    assert run.steps[-1].output == "two"


async def test_a_publish_whose_sync_handler_fails_leaves_nothing_behind(backend):
    text = CONFIG + "  - {name: guard, event: Paid, flow: Guard, mode: sync, bindings: {Amount: Amount}}\n"
    text = text.replace(
        "handlers:\n",
        """  - name: Guard
    inputs: {Amount: {type: Money}}
    steps:
      - {id: note, action: save, entity: Note, data: {id: n1}}
      - {id: stop, action: fail, message: "=inputs.Amount > 100 ? 'over the limit' : null"}
handlers:
""",
    )
    engine = engine_on(backend, text)
    try:
        await engine.publish("Paid", {"Id": "b1", "Amount": 500})
    except Exception as exc:  # RunFailed
        assert "over the limit" in str(exc)
    else:
        raise AssertionError("the publish should have failed")
    assert await backend.count_events() == 0
    assert await backend.entities("Note") == {}
    assert await backend.claim([QueueName.OUTBOUND], limit=10, owner="w", lease_s=1) == []


async def test_each_call_in_a_loop_keeps_its_own_journal(backend):
    text = """
    flows:
      - name: Main
        source: feed
        event_type: go
        steps:
          - id: each
            action: foreach
            items: "$.values"
            steps: [{id: add, action: call, flow: Twice, inputs: {n: "=item"}}]
          - {id: out, action: save, entity: Result, data: {id: r, last: "=steps.add.n"}}
      - name: Twice
        inputs: {n: {type: Integer, required: true}}
        steps:
          - {id: ext, action: double}
          - {id: o, action: output, values: {n: "=steps.ext"}}
    """
    engine = Engine(load_config_text(textwrap.dedent(text)), backend=backend)
    seen = []

    async def double(ctx, params):
        value = ctx.run.data["n"] * 2
        seen.append(value)
        return value

    engine.register_action("double", double)
    await engine.send("feed", "go", {"values": [5, 10, 15]})
    [run] = await Worker(engine, fast()).run_until_idle()
    assert run.succeeded and seen == [10, 20, 30]
    assert (await backend.read_entity("Result", "r")).record["last"] == 30


ROUTED = """
project: {name: shop}
events:
  - name: Noted
    properties: {Id: {type: String, required: true}}
flows:
  - name: Placed
    source: shop
    event_type: order.placed
    steps: [{id: keep, action: save, entity: Order, data: {id: "$.id"}}]
  - name: Paid
    source: shop
    event_type: order.paid
    steps: [{id: keep, action: save, entity: Payment, data: {id: "$.id"}}]
  - name: Cancelled
    source: shop
    event_type: order.cancelled
    enabled: false
    steps: [{id: keep, action: save, entity: Cancel, data: {id: "$.id"}}]
"""


def unmatched_count(source: str) -> float:
    value = PROCESS.registry.get_sample_value("flowbus_messages_unmatched_total", {"project": "shop", "source": source})
    return value or 0.0


async def test_a_source_message_no_enabled_flow_takes_ends_unmatched_with_a_warning_and_a_count(backend, caplog):
    engine = Engine(load_config_text(textwrap.dedent(ROUTED)), backend=backend, config_version=4)
    before = unmatched_count("shop")
    typo = await engine.send("shop", "order.placd", {"id": "o1"}, group_key="o1")
    disabled = await engine.send("shop", "order.cancelled", {"id": "o1"}, group_key="o1")
    routed = await engine.send("shop", "order.placed", {"id": "o1"}, group_key="o1")
    with caplog.at_level(logging.INFO, logger="flowbus.worker"):
        runs = await Worker(engine, fast()).run_until_idle()
    # the group goes on past them, as past done messages, and only the routed one runs
    assert [(r.flow, r.message_id) for r in runs] == [("Placed", routed)]
    states = [(await backend.get_message(m)).state for m in (typo, disabled, routed)]
    assert states == [MessageState.UNMATCHED, MessageState.UNMATCHED, MessageState.DONE]
    assert unmatched_count("shop") == before + 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.message_id, r.source, r.event_type, r.config_version) for r in warnings] == [
        (typo, "shop", "order.placd", 4),
        (disabled, "shop", "order.cancelled", 4),
    ]
    assert warnings[0].getMessage() == (
        "message matched no flow: no enabled trigger flow for (shop, order.placd); "
        "nearest configured pairs: (shop, order.placed), (shop, order.paid)"
    )
    assert "(shop, order.cancelled)" in warnings[1].getMessage()


async def test_an_event_message_without_subscribers_and_a_handler_message_are_never_unmatched(backend):
    engine = Engine(load_config_text(textwrap.dedent(ROUTED)), backend=backend, config_version=1)
    before = unmatched_count("shop")
    sent = await engine.send_event("Noted", {"Id": "n1"}, source="shop")
    assert await Worker(engine, fast()).run_until_idle() == []
    assert (await backend.get_message(sent)).state is MessageState.DONE
    engine = engine_on(backend)
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    [run] = await Worker(engine, fast()).run_until_idle()
    assert (await backend.get_message(run.message_id)).state is MessageState.DONE
    assert unmatched_count("shop") == before


async def test_the_worker_logs_one_line_per_finished_run(backend, caplog):
    engine = engine_on(backend)
    await engine.publish("Paid", {"Id": "b1", "Amount": 10})
    await engine.publish("Paid", {"Id": "b2", "Amount": 5000})  # rejected: a finished run too
    with caplog.at_level(logging.INFO, logger="flowbus.worker"):
        runs = await Worker(engine, fast()).run_until_idle()
    lines = [r for r in caplog.records if r.getMessage() == "run finished"]
    assert [(r.flow, r.handler, r.status, r.message_id, r.config_version) for r in lines] == [
        ("Book", "book", "succeeded", runs[0].message_id, 1),
        ("Book", "book", "rejected", runs[1].message_id, 1),
    ]
    assert [r.duration_ms for r in lines] == [round(run.duration_s * 1000, 3) for run in runs]
    assert (getattr(lines[0], "error", None), lines[1].error) == (None, "too much")


async def test_writes_the_store_refuses_charge_their_own_message_and_the_batch_goes_on(backend):
    """A key PostgreSQL cannot store (NUL in text) refuses the batch's commit: each message is then
    committed alone, the refused one is charged an attempt, the others are done."""
    if backend.__class__.__name__ != "PostgresBackend":
        pytest.skip("SQLite and memory store a NUL in a key: nothing refuses it")
    engine = engine_on(backend)
    for key in ("ok1", "bad\x00key", "ok2"):
        await engine.publish("Paid", {"Id": key, "Amount": 10})
    worker = Worker(engine, fast())
    await keep_working(worker, until=backend.dead_letters)
    [dead] = await backend.dead_letters()
    assert dead.attempts == 3 and all("the store refused the run's writes" in e.error for e in dead.errors)
    for key in ("ok1", "ok2"):
        assert (await backend.read_entity("Booking", key)).record["id"] == key


READ_AFTER_REFUSED = """
project: {name: shop}
events:
  - {name: Marked, properties: {Key: {type: String, required: true}}}
  - {name: Copied, properties: {Key: {type: String, required: true}}}
flows:
  - name: Mark
    inputs: {Key: {type: String, required: true}}
    retry: {max_attempts: 2, backoff_s: 0.01, max_backoff_s: 0.02}
    steps:
      - {id: mark, action: save, entity: Mark, data: {id: last, key: "=inputs.Key"}}
      - {id: log, action: save, entity: Log, data: {id: "=inputs.Key", seen: null}}
  - name: Copy
    inputs: {Key: {type: String, required: true}}
    steps:
      - {id: mark, action: get, entity: Mark, record_id: last}
      - {id: log, action: save, entity: Log, data: {id: "=inputs.Key", seen: "=steps.mark == null ? null : steps.mark.key"}}
handlers:
  - {name: mark, event: Marked, flow: Mark, mode: async, bindings: {Key: Key}}
  - {name: copy, event: Copied, flow: Copy, mode: async, bindings: {Key: Key}}
"""


async def test_a_run_that_read_a_write_the_store_refused_is_not_committed_on_its_own(backend):
    """Copy reads, within its batch, the Mark that a refused run wrote: when the batch's runs are
    then committed one by one, Copy must not be, since what it read never was; run again, it reads
    what the store holds."""
    if backend.__class__.__name__ != "PostgresBackend":
        pytest.skip("SQLite and memory store a NUL in a key: nothing refuses it")
    engine = engine_on(backend, READ_AFTER_REFUSED)
    await engine.publish("Marked", {"Key": "bad\x00key"})
    await engine.publish("Copied", {"Key": "copy"})

    async def both_finished() -> bool:
        return bool(await backend.dead_letters()) and await backend.read_entity("Log", "copy") is not None

    await keep_working(Worker(engine, fast()), until=both_finished)
    assert await backend.read_entity("Mark", "last") is None
    assert (await backend.read_entity("Log", "copy")).record == {"id": "copy", "seen": None}
