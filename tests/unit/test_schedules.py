"""Which ticks of a schedule fire, on a clock the tests set: the catch-up policies, time zones,
and the store that lets one worker fire each tick."""

from __future__ import annotations

import datetime as dt
import textwrap

from hypothesis import given
from hypothesis import strategies as st

from flowbus.config import load_config_text
from flowbus.config.schedules import Schedule
from flowbus.engine import Engine
from flowbus.schedules import LATE_S, Tick, due_ticks, fire_due, next_ticks
from flowbus.stores.memory import MemoryBackend

UTC = dt.UTC
AT_7 = dt.datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # a Monday


def schedule(**fields) -> Schedule:
    return Schedule.model_validate({"name": "s", "cron": "0 7 * * *", "run": "f", **fields})


def test_next_ticks_are_read_in_the_schedules_time_zone_across_a_clock_change():
    paris = schedule(cron="0 7 * * MON-FRI", timezone="Europe/Paris")
    ticks = next_ticks(paris, dt.datetime(2026, 10, 23, 12, 0, tzinfo=UTC), 3)  # Fri; summer time ends Sun 25
    assert [t.astimezone(UTC).isoformat() for t in ticks] == [
        "2026-10-26T06:00:00+00:00",  # Monday 07:00 in Paris, now UTC+1
        "2026-10-27T06:00:00+00:00",
        "2026-10-28T06:00:00+00:00",
    ]


def test_a_tick_is_due_from_its_time_on_and_not_again_once_fired():
    s = schedule()
    assert due_ticks(s, AT_7 - dt.timedelta(days=1), AT_7 - dt.timedelta(seconds=1)) == []
    assert due_ticks(s, AT_7 - dt.timedelta(days=1), AT_7) == [Tick("s", AT_7)]
    assert due_ticks(s, AT_7, AT_7 + dt.timedelta(hours=1)) == []


def test_after_downtime_latest_fires_the_newest_missed_tick_once():
    three_days_later = AT_7 + dt.timedelta(days=3, hours=2)
    assert due_ticks(schedule(), AT_7, three_days_later) == [Tick("s", AT_7 + dt.timedelta(days=3))]


def test_after_downtime_all_fires_each_missed_tick_oldest_first_up_to_its_cap():
    s = schedule(catch_up="all", max_catch_up=2)
    assert due_ticks(s, AT_7, AT_7 + dt.timedelta(days=1, hours=1)) == [Tick("s", AT_7 + dt.timedelta(days=1))]
    assert due_ticks(s, AT_7, AT_7 + dt.timedelta(days=5, hours=1)) == [
        Tick("s", AT_7 + dt.timedelta(days=4)),
        Tick("s", AT_7 + dt.timedelta(days=5)),
    ]


def test_after_downtime_none_skips_a_tick_more_than_a_minute_late_and_fires_one_less_late():
    s = schedule(catch_up="none")
    missed = AT_7 + dt.timedelta(days=1)
    assert due_ticks(s, AT_7, missed + dt.timedelta(seconds=LATE_S + 1)) == [Tick("s", missed, fires=False)]
    assert due_ticks(s, AT_7, missed + dt.timedelta(seconds=LATE_S - 1)) == [Tick("s", missed)]


def test_a_schedule_never_seen_owes_nothing_older_than_a_minute():
    s = schedule(catch_up="all")
    assert due_ticks(s, None, AT_7 + dt.timedelta(seconds=30)) == [Tick("s", AT_7)]
    assert due_ticks(s, None, AT_7 + dt.timedelta(minutes=5)) == []


@given(
    cron=st.sampled_from(["* * * * * *", "*/7 * * * * *", "0 * * * *", "0 7 * * MON-FRI", "15 2 1 * *"]),
    policy=st.sampled_from(["latest", "all", "none"]),
    cap=st.integers(1, 50),
    last_s=st.integers(0, 10 * 86400),
    gap_s=st.integers(0, 10 * 86400),
)
def test_due_ticks_are_real_ticks_in_order_after_the_last_one_and_bounded(cron, policy, cap, last_s, gap_s):
    s = schedule(cron=cron, catch_up=policy, max_catch_up=cap)
    last = AT_7 + dt.timedelta(seconds=last_s)
    now = last + dt.timedelta(seconds=gap_s)
    ticks = due_ticks(s, last, now)
    times = [t.at for t in ticks]
    assert times == sorted(set(times))
    assert all(last < at <= now for at in times)
    assert all(next_ticks(s, at - dt.timedelta(seconds=1), 1) == [at] for at in times)  # each is a tick
    assert len(ticks) <= (cap if policy == "all" else 1)
    # nothing between the newest due tick and now is left behind
    if times:
        assert not [at for at in next_ticks(s, times[-1], 1) if at <= now]


CONFIG = textwrap.dedent("""
    events:
      - name: Morning
        properties:
          Label: {type: String, required: true}
    flows:
      - name: greet
        inputs:
          Label: {type: String, required: true}
        steps: [{id: out, action: output, values: {said: "=inputs.Label"}}]
    handlers: [{name: on_morning, event: Morning, flow: greet, bindings: {Label: Label}}]
    schedules:
      - {name: publisher, cron: "0 7 * * *", publish: {event: Morning, properties: {Label: hello}}}
      - {name: runner, cron: "0 7 * * *", run: greet, inputs: {Label: direct}}
      - {name: off, cron: "0 7 * * *", run: greet, inputs: {Label: never}, enabled: false}
""")


async def test_fired_ticks_queue_an_event_or_a_flow_run_that_a_worker_then_runs():
    backend = MemoryBackend("default")
    engine = Engine(load_config_text(CONFIG, file="f.yaml"), backend=backend)
    await fire_due(backend, engine.plan, None, now=AT_7 - dt.timedelta(hours=1))  # first sight: nothing due
    fired = await fire_due(backend, engine.plan, None, now=AT_7 + dt.timedelta(seconds=1))
    assert fired == [Tick("publisher", AT_7), Tick("runner", AT_7)]
    assert await fire_due(backend, engine.plan, None, now=AT_7 + dt.timedelta(seconds=2)) == []  # once per tick
    runs = await engine.drain()
    assert sorted((r.flow, r.trigger, r.outputs["said"]) for r in runs) == [
        ("greet", "handler", "hello"),
        ("greet", "schedule", "direct"),
    ]
    assert set(await backend.schedule_ticks()) == {"publisher", "runner"}
