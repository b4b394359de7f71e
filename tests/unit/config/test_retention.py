"""The config's retention policy: durations, defaults, the order of ages, and its diff."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowbus.config import ConfigError, load_config_text
from flowbus.config.diff import diff_configs
from flowbus.config.retention import Retention, parse_duration
from flowbus.retention import KINDS, cutoffs, parse_before, parse_kinds
from flowbus.stores.protocols import RetentionKind

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def load(text: str):
    return load_config_text(textwrap.dedent(text), file="f.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(issue) for issue in info.value.issues]


@given(st.integers(min_value=1, max_value=999_999), st.sampled_from(sorted(UNITS)))
def test_a_duration_is_a_whole_number_and_a_unit(number, unit):
    assert parse_duration(f"{number}{unit}") == dt.timedelta(seconds=number * UNITS[unit])


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "1.5d", "-3d", "30 days", "30D", "P30D", "1000000d"])
def test_anything_else_is_not_a_duration(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_the_defaults_are_generous_and_in_order():
    policy = load("{}").config.retention
    assert policy == Retention()
    assert (policy.steps, policy.runs, policy.events) == (
        dt.timedelta(days=14), dt.timedelta(days=30), dt.timedelta(days=90),
    )  # fmt: skip
    assert (policy.messages, policy.dead_letters) == (dt.timedelta(days=7), dt.timedelta(days=90))


def test_a_policy_reads_as_written():
    policy = load("retention: {events: 30d, runs: 2w, steps: 36h, messages: 90m, dead_letters: 90d}").config.retention
    assert policy.runs == dt.timedelta(weeks=2) and policy.steps == dt.timedelta(hours=36)
    assert policy.messages == dt.timedelta(minutes=90)


def test_bad_durations_are_reported_with_file_line_and_field():
    assert errors("""
        retention:
          events: 30d
          steps: 7x
          messages: 5m
          dead_letters: 365
    """) == [
        "f.yaml:4: retention.steps: '7x' is not a duration: write a whole number and a unit (m, h, d, w), such as 30d",
        "f.yaml:5: retention.messages: a record is kept 10m at least: a sweep must not race the runs still writing it",
        "f.yaml:6: retention.dead_letters: a duration is text such as 30d, 36h or 90m, not int",
    ]


def test_steps_cannot_outlive_their_runs_nor_runs_their_events():
    assert errors("retention: {steps: 40d}") == [
        "f.yaml:1: retention: `steps` cannot be kept longer than `runs`: a step run is part of its run"
    ]
    assert errors("retention: {events: 7d}") == [
        "f.yaml:1: retention: `runs` cannot be kept longer than `events`: a run's trace starts at its event"
    ]


def test_a_changed_policy_shows_in_the_diff():
    old, new = load("{}").config, load("retention: {runs: 14d, steps: 7d}").config
    assert diff_configs(old, new).lines() == ["~ retention of default: runs, steps"]


def test_cutoffs_are_now_less_each_age():
    now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    due = cutoffs(Retention(), now, (RetentionKind.RUNS, RetentionKind.MESSAGES))
    assert due == {RetentionKind.RUNS: now - dt.timedelta(days=30), RetentionKind.MESSAGES: now - dt.timedelta(days=7)}


def test_kinds_and_times_of_a_purge_are_read_or_refused_with_a_reason():
    assert parse_kinds(" runs, steps ") == (RetentionKind.RUNS, RetentionKind.STEPS)
    assert parse_kinds(",".join(KINDS)) == KINDS
    with pytest.raises(ValueError, match="tasks is not a kind"):
        parse_kinds("runs,tasks")
    with pytest.raises(ValueError, match="nothing is not a kind"):
        parse_kinds(",")
    now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    assert parse_before("30d", now) == now - dt.timedelta(days=30)
    assert parse_before("2026-11-01T00:00:00", now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="neither an age"):
        parse_before("yesterday", now)
