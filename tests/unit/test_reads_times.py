"""The times the CLI's reads take (--since, --until): ISO 8601 in ASCII digits, said in flowbus's words."""

import datetime as dt

import pytest

from flowbus.reads import utc_time


def test_a_time_with_an_offset_is_read_in_utc():
    assert utc_time("2026-11-22T12:00:00+02:00") == dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
    assert utc_time("2026-11-22T10:00:00") == dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["20٢6-11-22T10:00:00Z", "2026-11-2٢T10:00:00Z", "2026-11-22T1\u0660:00:00Z"])
def test_digits_of_another_script_are_no_time_by_the_form_check(text):
    with pytest.raises(ValueError, match="write it as ISO 8601"):
        utc_time(text)


def test_a_day_past_its_months_end_names_no_real_date():
    with pytest.raises(ValueError, match="names no real date"):
        utc_time("2026-02-30T10:00:00Z")
