"""Debounce in the config: what loads, what a handler takes from its flow, and each refusal with
its FILE:LINE: field: reason."""

from __future__ import annotations

import textwrap

import pytest

from flowbus.config import ConfigError, Severity, load_config_text
from flowbus.config.plan import compile_plan

BASE = """
events:
  - name: Changed
    properties:
      CustomerId: {type: String, required: true}
flows:
  - name: Sync
    inputs: {CustomerId: {type: String, required: true}}
    steps: [{id: l, action: log, message: "=inputs.CustomerId"}]
"""
HANDLER = "  - {name: a, event: Changed, flow: Sync, bindings: {CustomerId: CustomerId}, %s}\n"


PACED = """\
  - name: Paced
    inputs: {CustomerId: {type: String, required: true}}
    debounce: {period: 10}
    steps: [{id: l, action: log, message: hi}]
"""
HOOK = """\
  - name: hook
    source: s
    event_type: t
    debounce: {period: 1s}
    steps: [{id: l, action: log, message: hi}]
"""


def load(handlers: str, flows: str = ""):
    """The base config, with more ``flows`` (items of its list, as written) and ``handlers`` (the section)."""
    return load_config_text(BASE + flows + textwrap.dedent(handlers).lstrip("\n"), file="f.yaml")


def errors(handlers: str, flows: str = "") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(handlers, flows)
    return [str(i) for i in info.value.issues if i.severity is Severity.ERROR]


def test_a_handler_s_debounce_comes_first_then_its_flow_s():
    loaded = load(
        """
        handlers:
          - {name: own, event: Changed, flow: Paced, bindings: {CustomerId: CustomerId},
             debounce: {period: 500ms, key: "=event.data.CustomerId", max_wait: 1m}}
          - {name: inherited, event: Changed, flow: Paced, bindings: {CustomerId: CustomerId}}
          - {name: plain, event: Changed, flow: Sync, bindings: {CustomerId: CustomerId}}
        """,
        PACED,
    )
    plan = compile_plan(loaded.config)
    own, inherited, plain = (plan.handlers[name].debounce for name in ("own", "inherited", "plain"))
    assert (own.period_s, own.max_wait_s, own.key.evaluate({"event": {"data": {"CustomerId": "c1"}}})) == (
        0.5,
        60.0,
        "c1",
    )
    assert (inherited.period_s, inherited.max_wait_s, inherited.key) == (10.0, None, None)
    assert plain is None


@pytest.mark.parametrize(
    ("debounce", "expected"),
    [
        ("{period: 0s}", "debounce.period: must be longer than 0: a burst ends after some quiet, never at once"),
        ("{period: 0}", "debounce.period: must be longer than 0: a burst ends after some quiet, never at once"),
        ("{period: -5}", "debounce.period: must be longer than 0: a burst ends after some quiet, never at once"),
        ("{period: 8d}", "debounce.period: must be 7d at most"),
        (
            "{period: soon}",
            "debounce.period: 'soon' is not a duration: give seconds or a number with a unit (500ms, 10s, 1m, 2h)",
        ),
        ("{key: '=event.id'}", "debounce.period: required field is missing"),
        (
            "{period: 10s, max_wait: 5s}",
            "debounce: `max_wait` (5s) is shorter than `period` (10s): a burst would always run before its quiet; "
            "give a max_wait of at least the period",
        ),
        ("{period: 10s, max_wait: 0s}", "debounce.max_wait: must be longer than 0: a burst ends after some quiet"),
        (
            "{period: 10s, key: event.data.CustomerId}",
            "debounce.key: 'event.data.CustomerId' is not an expression: a key is computed from each event, "
            'as in "=event.data.CustomerId"',
        ),
        (
            '{period: 10s, key: "=inputs.CustomerId"}',
            "debounce.key: the key '=inputs.CustomerId' does not compile: unknown variable 'inputs' at column 1; "
            "the variables are: event",
        ),
        ("{period: 10s, every: 2}", "debounce.every: unknown field"),
    ],
)
def test_nonsense_in_a_debounce_is_refused_at_its_line(debounce, expected):
    [error] = errors("handlers:\n" + HANDLER % f"debounce: {debounce}")
    assert error.startswith(f"f.yaml:11: handlers[0].{expected}"), error


def test_debounce_applies_to_async_handlers_only():
    assert errors(
        """
        handlers:
          - {name: a, event: Changed, flow: Sync, mode: sync, bindings: {CustomerId: CustomerId},
             debounce: {period: 1s}}
          - {name: b, event: Changed, flow: Paced, mode: sync, bindings: {CustomerId: CustomerId}}
          - {name: c, event: Changed, flow: Paced, bindings: {CustomerId: CustomerId}}
        """,
        PACED + HOOK,
    ) == [
        "f.yaml:17: flows[2].debounce: debounce applies to flows run by async handlers: a trigger flow runs for "
        "every source message (debounce the handlers of the event it publishes instead)",
        "f.yaml:21: handlers[0].debounce: a sync handler runs inside its publisher's transaction and cannot wait "
        "for a burst to end; make the handler async",
        "f.yaml:22: handlers[1].mode: flow 'Paced' has a debounce, and a sync handler of it runs inside its "
        "publisher's transaction and cannot wait for a burst to end; make the handler async",
    ]


KEPT_10M = "retention: {events: 10m, runs: 10m, steps: 10m, messages: 10m}\n"


def test_a_burst_that_could_outwait_its_event_s_retention_is_refused_at_its_line():
    """A burst runs for its last event: with events kept 10 minutes, a period or max_wait of 10
    minutes or more could find that event removed by the sweep before the run."""
    paced = PACED.replace("{period: 10}", "{period: 1h}")
    with pytest.raises(ConfigError) as info:
        load_config_text(
            KEPT_10M
            + BASE
            + paced
            + textwrap.dedent(
                """\
                handlers:
                  - {name: a, event: Changed, flow: Sync, bindings: {CustomerId: CustomerId},
                     debounce: {period: 10m}}
                  - {name: b, event: Changed, flow: Sync, bindings: {CustomerId: CustomerId},
                     debounce: {period: 1m, max_wait: 600s}}
                  - {name: c, event: Changed, flow: Paced, bindings: {CustomerId: CustomerId}}
                  - {name: d, event: Changed, flow: Sync, bindings: {CustomerId: CustomerId},
                     debounce: {period: 9m, max_wait: 599s}}
                """
            ),
            file="f.yaml",
        )
    reason = (
        "is not shorter than `retention.events` (10m): the event a waiting burst runs for could be removed "
        "before its run; give a shorter {0} or keep events longer"
    )
    assert [str(i) for i in info.value.issues if i.severity is Severity.ERROR] == [
        "f.yaml:13: flows[1].debounce.period: `period` (1h) " + reason.format("period"),
        "f.yaml:17: handlers[0].debounce.period: `period` (10m) " + reason.format("period"),
        "f.yaml:19: handlers[1].debounce.max_wait: `max_wait` (10m) " + reason.format("max_wait"),
    ]
    # the same bursts load with events kept longer than they can wait
    assert load_config_text(KEPT_10M.replace("events: 10m", "events: 11m") + BASE + PACED, file="f.yaml")
