"""JSON in and out: parsing refuses what nests too deep; writing our own data never does."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowbus import jsonio


def nested(levels: int) -> object:
    value: object = {"leaf": Decimal("1.10")}
    for level in range(levels):
        value = {"level": level, "children": [value]}
    return value


def test_writing_data_nested_far_deeper_than_parsing_accepts_succeeds():
    deep = nested(5000)  # past Python's recursion limit too
    text = jsonio.dumps(deep)
    assert text.startswith('{"level":4999,"children":[{"level":4998,') and text.endswith(
        '{"leaf":1.10}]}' + "]}" * 4999
    )
    shallow = nested(200)
    assert json.loads(jsonio.dumps(shallow, indent=2)) == json.loads(jsonio.dumps(shallow))


def test_parsing_still_refuses_json_that_nests_too_deep():
    with pytest.raises(jsonio.JsonError, match="nests deeper than 64"):
        jsonio.loads(jsonio.dumps(nested(40)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(json_values)
def test_dumps_writes_what_the_standard_library_writes(value):
    assert jsonio.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert jsonio.dumps(value, indent=2) == json.dumps(value, indent=2)


def test_times_decimals_and_empty_containers_keep_their_forms():
    value = {"at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC), "n": Decimal("0.10"), "e": [], "o": {}}
    assert jsonio.dumps(value) == '{"at":"2026-01-02T03:04:00+00:00","n":0.10,"e":[],"o":{}}'
