"""Schedules and delays in the config: what loads, and each refusal with its FILE:LINE: field: reason."""

from __future__ import annotations

import textwrap

import pytest

from flowbus.config import ConfigError, Severity, load_config_text

BASE = """
events:
  - name: Tick
    properties:
      Label: {type: String, required: true}
flows:
  - name: report
    inputs:
      day: {type: String, required: true}
    steps: [{id: l, action: log, message: "=inputs.day"}]
  - name: hook
    source: s
    event_type: t
    steps: [{id: l, action: log, message: hi}]
"""


def load(schedules: str):
    return load_config_text(BASE + textwrap.dedent(schedules), file="f.yaml")


def errors(schedules: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(schedules)
    return [str(i) for i in info.value.issues if i.severity is Severity.ERROR]


def test_schedules_that_publish_and_run_load_and_count_as_running_their_flow():
    loaded = load("""
    schedules:
      - name: weekday_morning
        cron: "0 7 * * MON-FRI"
        timezone: Europe/Paris
        publish: {event: Tick, properties: {Label: morning}}
      - name: nightly
        cron: "30 2 * * *"
        catch_up: all
        max_catch_up: 3
        run: report
        inputs: {day: today}
    """)
    first, second = loaded.config.schedules
    assert (first.timezone, first.catch_up, first.publish and first.publish.event) == ("Europe/Paris", "latest", "Tick")
    assert (second.run, second.catch_up, second.max_catch_up) == ("report", "all", 3)
    assert not [w for w in loaded.warnings if "never runs" in str(w)]  # the schedule runs `report`


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'cron: "0 0 30 2 *"',
            "f.yaml:20: schedules[0].cron: '0 0 30 2 *' is not a cron expression flowbus can read: Bad day-of-month",
        ),
        (
            'cron: "every day"',
            "f.yaml:20: schedules[0].cron: 'every day' is not a cron expression flowbus can read: "
            "Wrong number of fields",
        ),
        (
            "timezone: Mars/Olympus",
            "f.yaml:21: schedules[0].timezone: unknown time zone 'Mars/Olympus'; give an IANA name like "
            "Europe/Paris or UTC",
        ),
        ("catch_up: sometimes", "f.yaml:21: schedules[0].catch_up: must be 'latest', 'all' or 'none', got 'sometimes'"),
        ("max_catch_up: 0", "f.yaml:21: schedules[0].max_catch_up: Input should be greater than or equal to 1"),
    ],
)
def test_nonsense_in_a_schedule_is_refused_at_its_line(line, expected):
    cron = line if line.startswith("cron") else f'cron: "0 7 * * *"\n        {line}'
    assert errors(f"""
    schedules:
      - name: s
        run: report
        inputs: {{day: x}}
        {cron}
    """) == [expected]


def test_a_schedule_does_one_thing():
    assert errors("""
    schedules:
      - {name: e, cron: "* * * * *"}
      - {name: f, cron: "* * * * *", publish: {event: Tick, properties: {Label: x}}, inputs: {a: 1}}
    """) == [
        "f.yaml:17: schedules[0]: a schedule does one thing: give `publish` (an event) or `run` (a logic flow)",
        "f.yaml:18: schedules[1]: `inputs` go with `run`: the inputs of the flow a tick runs",
    ]


def test_references_of_schedules_are_checked():
    found = errors("""
    schedules:
      - {name: a, cron: "* * * * *", publish: {event: Tik, properties: {Label: x}}}
      - {name: b, cron: "* * * * *", publish: {event: Tick, properties: {Lable: x}}}
      - {name: c, cron: "* * * * *", run: hook}
      - {name: d, cron: "* * * * *", run: report}
      - {name: d, cron: "* * * * *", run: report, inputs: {day: x}}
    """)
    assert found == [
        "f.yaml:21: schedules[4].name: schedule names must be unique: 'd' is already defined at line 20",
        "f.yaml:17: schedules[0].publish.event: no event named 'Tik'; did you mean 'Tick'?",
        "f.yaml:18: schedules[1].publish.properties.Lable: event 'Tick' has no property 'Lable'; did you mean 'Label'?",
        "f.yaml:18: schedules[1].publish.properties: event 'Tick' requires 'Label', which is not given",
        "f.yaml:19: schedules[2].run: flow 'hook' is a trigger flow; a schedule runs logic flows",
        "f.yaml:20: schedules[3].inputs: flow 'report' requires 'day', which is not given",
    ]


def test_literal_properties_and_inputs_of_a_schedule_are_checked_against_their_types():
    assert errors("""
    schedules:
      - {name: a, cron: "* * * * *", publish: {event: Tick, properties: {Label: [1]}}}
    """) == ["f.yaml:17: schedules[0].publish.properties: Tick: Label: Input should be a valid string"]
    assert errors("""
    schedules:
      - {name: a, cron: "* * * * *", run: report, inputs: {day: {a: 1}}}
    """) == ["f.yaml:17: schedules[0].inputs: flow report inputs: day: Input should be a valid string"]


DELAYED_STEP = BASE.replace(
    "steps: [{id: l, action: log, message: hi}]",
    "steps: [{id: p, action: publish, event: Tick, properties: {Label: x}, %s}]",
)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ("delay: soon", "'soon' is not a delay; give seconds or a number with a unit (90s, 10m, 2h)"),
        ("delay: 400d", "'400d' is more than the longest delay, 365 days"),
        ("delay: -5", "a delay cannot be negative, got -5"),
        ("not_before: tomorrow", "'tomorrow' is not a time; give ISO 8601 with an offset, like 2026-12-01T07:00:00Z"),
        (
            "not_before: '2026-12-01T07:00:00'",
            "2026-12-01T07:00:00 has no offset; give one (Z for UTC), flowbus will not guess",
        ),
        ("delay: 5, not_before: '2026-01-01T00:00:00Z'", "give `delay` or `not_before`, not both"),
    ],
)
def test_a_literal_delay_of_a_publish_step_is_checked_when_the_config_loads(fields, reason):
    with pytest.raises(ConfigError) as info:
        load_config_text(DELAYED_STEP % fields, file="f.yaml")
    assert [str(i) for i in info.value.issues] == [f"f.yaml:14: flows[1].steps[0]: {reason}"]


def test_a_delay_given_by_an_expression_is_checked_when_the_step_runs():
    loaded = load_config_text(DELAYED_STEP % 'delay: "=data.wait"', file="f.yaml")
    assert loaded.plan.flows["hook"].model.steps[0].delay == "=data.wait"
