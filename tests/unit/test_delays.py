"""Delays and not-before times, as every way in reads them: bounded, in flowbus's words."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowbus.delays import MAX_DELAY_S, DelayError, not_before, parse_delay

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("given_", "seconds"),
    [(90, 90.0), (1.5, 1.5), (Decimal("2.5"), 2.5), ("90", 90.0), ("500ms", 0.5), ("90s", 90.0), ("10m", 600.0),
     ("2h", 7200.0), ("7d", 604800.0), (" 3 m ", 180.0), (dt.timedelta(minutes=2), 120.0), (0, 0.0)],
)  # fmt: skip
def test_a_delay_is_seconds_or_a_number_with_a_unit(given_, seconds):
    assert parse_delay(given_) == seconds


@pytest.mark.parametrize(
    ("given_", "reason"),
    [
        ("soon", "delay: 'soon' is not a delay; give seconds or a number with a unit (90s, 10m, 2h)"),
        ("10 minutes", "delay: '10 minutes' is not a delay; give seconds or a number with a unit (90s, 10m, 2h)"),
        (True, "delay: True is not a delay; give seconds or a number with a unit (90s, 10m, 2h)"),
        (-1, "delay: a delay cannot be negative, got -1"),
        ("-2m", "delay: a delay cannot be negative, got '-2m'"),
        (float("nan"), "delay: a delay cannot be negative, got nan"),
    ],
)
def test_nonsense_delays_are_refused_in_flowbus_words(given_, reason):
    with pytest.raises(DelayError) as info:
        parse_delay(given_)
    assert str(info.value) == reason


def test_not_before_is_now_plus_the_delay_or_the_time_given_and_none_when_due():
    assert not_before(None, None, now=NOW) is None
    assert not_before("1h", now=NOW) == NOW + dt.timedelta(hours=1)
    assert not_before(0, now=NOW) is None  # no wait: ready at once
    paris = dt.timezone(dt.timedelta(hours=1))
    assert not_before(at="2026-11-27T14:00:00+01:00", now=NOW) == dt.datetime(2026, 11, 27, 13, tzinfo=dt.UTC)
    assert not_before(at=dt.datetime(2026, 11, 27, 14, tzinfo=paris), now=NOW).tzinfo is dt.UTC
    assert not_before(at="2026-11-27T11:00:00Z", now=NOW) is None  # in the past: at once


@pytest.mark.parametrize(
    ("delay", "at", "reason"),
    [
        (5, "2026-12-01T00:00:00Z", "delay: give a delay or a not-before time, not both"),
        ("366d", None, "delay: '366d' is more than the longest delay, 365 days"),
        (None, "2028-01-01T00:00:00Z", "delay: 2028-01-01T00:00:00+00:00 is more than 365 days ahead"),
        (None, "2026-12-01 07:00", "delay: 2026-12-01T07:00:00 has no offset; give one (Z for UTC), flowbus will not guess"),
        (None, "x" * 100, "is not a time; give ISO 8601 with an offset, like 2026-12-01T07:00:00Z"),
    ],
)  # fmt: skip
def test_a_time_too_far_ahead_or_without_an_offset_is_refused(delay, at, reason):
    with pytest.raises(DelayError) as info:
        not_before(delay, at, now=NOW)
    assert reason in str(info.value)


@given(st.floats(min_value=0, max_value=MAX_DELAY_S, allow_nan=False))
def test_any_delay_within_the_bound_is_honoured_to_the_microsecond(seconds):
    when = not_before(seconds, now=NOW)
    expected = NOW + dt.timedelta(seconds=seconds)
    assert (when or NOW) == expected or (when is None and expected == NOW)


@given(st.text(max_size=40))
def test_any_text_is_a_delay_or_refused_as_one_never_another_error(text):
    try:
        assert parse_delay(text) >= 0
    except DelayError as error:
        assert str(error).startswith("delay: ")


def test_a_huge_number_or_a_long_text_is_refused_briefly_and_for_good():
    with pytest.raises(
        DelayError, match=r"^delay: 1{60}\.\.\. \(400 characters\) seconds is past the longest delay"
    ) as huge:
        parse_delay(int("1" * 400))
    with pytest.raises(DelayError) as long_text:
        parse_delay("9" * 10_000)
    assert len(str(long_text.value)) < 200 and "(10,002 characters)" in str(long_text.value)
    # the same value fails the same way on every attempt: a message holding it is not retried
    assert huge.value.permanent and long_text.value.permanent


@given(st.integers(min_value=0, max_value=10**4000))
def test_any_integer_is_a_delay_or_refused_as_one(seconds):
    with contextlib.suppress(DelayError):  # any other error fails the test
        assert parse_delay(seconds) == float(seconds)
