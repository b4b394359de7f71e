"""JSON in and out: untrusted text is parsed exactly or refused in flowbus's words, never a Python
message; writing our own data never fails, however deep it nests."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowbus import jsonio


def refusal(text: str | bytes) -> jsonio.JsonError:
    with pytest.raises(jsonio.JsonError) as caught:
        jsonio.loads(text)
    return caught.value


def test_numbers_with_a_fraction_are_decimals():
    assert jsonio.loads(b'{"price": 19.90, "n": 3}') == {"price": Decimal("19.90"), "n": 3}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (b'{"a": "\\ud800"}', "$.a holds a lone surrogate"),
        (b'{"a": [1, {"b": "x\\udfff"}]}', "$.a[1].b holds a lone surrogate"),
        (b'{"k\\ud800": 1}', "the key 'k\\\\ud800' of $ holds a lone surrogate"),
        (b'{"odd key": ["\\ud800"]}', "$['odd key'][0] holds a lone surrogate"),
        ('"\ud800"', "$ holds a lone surrogate"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_where_it_is(text, where):
    error = refusal(text)
    assert isinstance(error, jsonio.NotUnicode)
    assert error.message == f"{where}, which is not a character"


def test_a_surrogate_pair_is_one_character_and_is_kept():
    assert jsonio.loads(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_bytes_that_are_not_utf8_are_refused_naming_the_offset():
    error = refusal('{"a": 1}'.encode("utf-16"))
    assert isinstance(error, jsonio.NotUnicode)
    assert error.message == "the JSON is not UTF-8: byte 0xff at offset 0"


def test_a_key_twice_in_one_object_is_refused_not_last_wins():
    assert refusal(b'{"type": "tick", "type": "poison"}').message == (
        "not valid JSON: the key 'type' appears twice in one object"
    )


def test_a_huge_integer_is_refused_in_flowbus_words():
    assert refusal(b"1" * 5000).message == "not valid JSON: a number of 5,000 digits; the limit is 4,300"
    assert jsonio.loads(b"9" * 4300) == int("9" * 4300)


def test_deep_nesting_is_refused_as_too_deep_however_deep():
    assert jsonio.loads(b"[" * 65 + b"]" * 65)  # 64 levels below the top
    for depth in (66, 5_000, 100_000):
        assert refusal(b"[" * depth + b"]" * depth).message == "JSON nests deeper than 64 levels"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_json_error(text):
    for candidate in (text, json.dumps(text, ensure_ascii=True), text.encode("utf-8", "surrogatepass")):
        with contextlib.suppress(jsonio.JsonError):  # anything else fails the test
            jsonio.loads(candidate)


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
