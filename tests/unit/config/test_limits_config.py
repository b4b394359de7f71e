"""Flow control in the config: what loads, what a handler's messages carry, and each refusal
with its FILE:LINE: field: reason."""

from __future__ import annotations

import textwrap

import pytest

from flowbus.config import ConfigError, Severity, load_config_text

BASE = """
events:
  - name: Paid
    properties:
      CustomerId: {type: String}
flows:
  - name: Notify
    steps: [{id: l, action: log, message: hi}]
  - name: hook
    source: s
    event_type: t
    steps: [{id: l, action: log, message: hi}]
"""


def load(extra: str):
    return load_config_text(BASE + textwrap.dedent(extra), file="f.yaml")


def errors(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(extra)
    return [str(i) for i in info.value.issues if i.severity is Severity.ERROR]


def test_limits_and_priority_of_a_handler_load():
    loaded = load("""
    handlers:
      - name: notify
        event: Paid
        flow: Notify
        concurrency: {limit: 5, key: "=event.data.CustomerId"}
        rate_limit: {limit: 100, period: 1m}
        priority: 8
    """)
    [handler] = loaded.config.handlers
    assert handler.concurrency is not None and handler.concurrency.limit == 5
    assert handler.rate_limit is not None and handler.rate_limit.period == 60.0
    assert handler.rate_limit.interval_s == 0.6 and handler.priority == 8
    control = loaded.plan.handlers["notify"].flow_control
    assert control is not None and control.priority == 8
    assert control.concurrency is not None and control.concurrency.owner == "handler:notify"


def test_a_handler_without_any_has_no_flow_control_and_the_default_priority():
    loaded = load("handlers: [{name: notify, event: Paid, flow: Notify}]")
    assert loaded.config.handlers[0].priority == 5
    assert loaded.plan.handlers["notify"].flow_control is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("concurrency: {limit: 0}", "f.yaml:18: handlers[0].concurrency.limit: Input should be greater than or equal to 1"),
        ("rate_limit: {limit: 0, period: 1s}", "f.yaml:18: handlers[0].rate_limit.limit: Input should be greater than or equal to 1"),
        ("rate_limit: {limit: 5, period: 0s}", "f.yaml:18: handlers[0].rate_limit.period: a period must be longer than zero, got '0s'"),
        ("rate_limit: {limit: 5, period: 2d}", "f.yaml:18: handlers[0].rate_limit.period: a period is at most a day (86,400 s), got '2d'"),
        ("rate_limit: {limit: 5, period: soon}", "f.yaml:18: handlers[0].rate_limit.period: 'soon' is not a delay; give seconds or a number with a unit (90s, 10m, 2h)"),
        ("rate_limit: {limit: 5}", "f.yaml:18: handlers[0].rate_limit.period: required field is missing"),
        ("priority: 10", "f.yaml:18: handlers[0].priority: Input should be less than or equal to 9"),
        ("priority: -1", "f.yaml:18: handlers[0].priority: Input should be greater than or equal to 0"),
        (
            "concurrency: {limit: 2, key: CustomerId}",
            "f.yaml:18: handlers[0].concurrency.key: 'CustomerId' is not an expression; a key is an `=` expression, "
            'like "=event.data.CustomerId"',
        ),
    ],
)  # fmt: skip
def test_nonsense_in_flow_control_is_refused_at_its_line(fields, expected):
    assert errors(f"""
    handlers:
      - name: notify
        event: Paid
        flow: Notify
        {fields}
    """) == [expected]


def test_a_key_expression_that_does_not_compile_is_refused_at_its_line():
    [error] = errors("""
    handlers:
      - name: notify
        event: Paid
        flow: Notify
        concurrency: {limit: 2, key: "=event.data.("}
    """)
    assert error.startswith("f.yaml:18: handlers[0].concurrency.key: ")
    [error] = errors("""
    handlers:
      - name: notify
        event: Paid
        flow: Notify
        rate_limit: {limit: 2, period: 1s, key: "=steps.x"}
    """)
    assert error.startswith("f.yaml:18: handlers[0].rate_limit.key: ") and "steps" in error


def test_a_trigger_flow_cannot_be_limited_on_its_own():
    text = BASE.replace("    event_type: t\n", "    event_type: t\n    concurrency: {limit: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config_text(text, file="f.yaml")
    assert [str(i) for i in info.value.issues if i.severity is Severity.ERROR] == [
        "f.yaml:12: flows[1].concurrency: `concurrency` applies to the runs of handlers; a trigger flow runs "
        "with every other trigger flow of its source message, so it cannot be limited on its own"
    ]


def test_a_debounced_handler_takes_no_concurrency_or_rate_limit():
    # a burst's message is folded in place by its own statement, which keeps no flow control
    assert errors("""
    handlers:
      - {name: h, event: Paid, flow: Notify, debounce: {period: 10s}, concurrency: {limit: 1}}
    """) == [
        "f.yaml:15: handlers[0].debounce: a debounced handler takes no concurrency (it runs once a burst "
        "already); debounce it, or limit it, not both"
    ]
