"""A target's rate limit, Retry-After cap and bound of deferrals: read as written, nonsense refused at its line."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from flowbus.config import ConfigError, load_config_text
from flowbus.config.limits import SLACK_S, parse_period


def load(text: str):
    return load_config_text(textwrap.dedent(text), file="f.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(issue) for issue in info.value.issues]


def test_a_target_reads_its_limits_as_written():
    [target] = load("""
        targets:
          - name: crm
            type: http
            base_url: https://crm.example
            rate_limit: {limit: 100, period: 1m}
            max_retry_after: 90s
            max_deferrals: 4
    """).config.targets
    assert target.rate_limit.limit == 100 and target.rate_limit.period == dt.timedelta(minutes=1)
    assert target.rate_limit.interval_s == pytest.approx((60 + SLACK_S) / 100)
    assert target.max_retry_after == dt.timedelta(seconds=90) and target.max_deferrals == 4


def test_the_defaults_limit_nothing_and_honour_five_minutes_of_retry_after_ten_times():
    [target] = load("targets: [{name: crm, type: http, base_url: 'https://crm.example'}]").config.targets
    assert target.rate_limit is None
    assert target.max_retry_after == dt.timedelta(minutes=5) and target.max_deferrals == 10


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30), ("1m", 60), ("1.5m", 90), ("2h", 7200), ("1d", 86400), (10, 10)]
)
def test_a_period_is_written_as_every_duration_of_a_config(text, seconds):
    assert parse_period(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "m", "1 minute", "1M", "PT1M", True])
def test_anything_else_is_not_a_period(text):
    with pytest.raises(ValueError, match="give seconds or a number with a unit"):
        parse_period(text)


def test_a_period_of_zero_or_past_a_day_is_refused():
    for text, said in (
        ("0s", "longer than zero"),
        (1e-7, "longer than zero"),
        ("-1m", "negative"),
        ("2d", "1d at most"),
    ):
        with pytest.raises(ValueError, match=said):
            parse_period(text)


def test_nonsense_limits_are_reported_with_file_line_and_field():
    assert errors("""
        targets:
          - name: crm
            type: http
            base_url: https://crm.example
            rate_limit: {limit: 0, period: 0s}
            max_retry_after: 2d
            max_deferrals: 0
          - name: erp
            type: http
            base_url: https://erp.example
            rate_limit:
              limit: 5
              period: soon
          - name: wms
            type: http
            base_url: https://wms.example
            rate_limit: {period: 1m}
    """) == [
        "f.yaml:6: targets[0].rate_limit.limit: a rate limit allows 1 call a period at least, not 0",
        "f.yaml:6: targets[0].rate_limit.period: a period must be longer than zero",
        "f.yaml:7: targets[0].max_retry_after: a period is 1d at most",
        "f.yaml:8: targets[0].max_deferrals: Input should be greater than or equal to 1",
        "f.yaml:14: targets[1].rate_limit.period: 'soon' is not a delay; give seconds or a number with a unit (90s, 10m, 2h)",
        "f.yaml:18: targets[2].rate_limit.limit: required field is missing",
    ]
