"""The codec writes the text the json module wrote before it, and reads every text as it read it.

``old_encode``/``old_decode`` are the json-module codec flowbus stored its data with before orjson,
kept here as it was: text already in databases was written by it, and must read back the same.
Values are compared by their ``repr``, which tells NaN, -0.0, a list from a tuple and a ``Decimal``
from a float apart, where ``==`` would not (or, for a signalling NaN, would raise).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbus.codec import CodecError, decode, encode
from flowbus.events.frozen import FrozenDict
from flowbus.runtime.records import StepRun, StepStatus


def _old_tag(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$duration": value.total_seconds()}
    if isinstance(value, tuple):
        return list(value)
    raise CodecError(f"a {type(value).__name__} cannot be stored")


_OLD_DECODERS: dict[str, Any] = {
    "$decimal": Decimal,
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$duration": lambda seconds: dt.timedelta(seconds=seconds),
}


def _old_untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        key, value = next(iter(obj.items()))
        decoder = _OLD_DECODERS.get(key)
        if decoder is not None:
            try:
                return decoder(value)
            except (ArithmeticError, ValueError, TypeError):
                return obj
    return obj


def old_encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_old_tag)


_OLD_DECODER = json.JSONDecoder(object_hook=_old_untag)


def old_decode(text: str | bytes) -> Any:
    if not isinstance(text, str):
        return json.loads(text, object_hook=_old_untag)
    return _OLD_DECODER.decode(text)


def same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)


zones = (
    st.none() | st.just(dt.UTC) | st.builds(dt.timezone, st.timedeltas(dt.timedelta(hours=-23), dt.timedelta(hours=23)))
)
decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [Decimal("-0"), Decimal("sNaN"), Decimal("-NaN"), Decimal("1E+999999"), Decimal("-1E-999999"), Decimal("19.90")]
)
#: numbers beyond 64 bits (and just inside) as well as small ones
integers = (
    st.integers()
    | st.integers(-(2**80), 2**80)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
)
exact_scalars = (
    st.text()
    | integers
    | st.booleans()
    | st.none()
    | decimals
    | st.datetimes(timezones=zones)
    | st.dates()
    | st.sampled_from(list(StepStatus))
)
#: a float may be written in another of its shortest forms: equal values, maybe not equal text
float_scalars = st.floats() | st.timedeltas()
#: keys that look like tags, so that look-alikes of every tag are generated
keys = st.text(max_size=8) | st.sampled_from(["$decimal", "$datetime", "$date", "$duration"])


def nested(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.lists(children, max_size=4).map(tuple)
            | st.dictionaries(keys, children, max_size=4)
            | st.dictionaries(keys, children, max_size=4).map(FrozenDict)
        ),
        max_leaves=20,
    )


# a tag holding a value that reads as another tag, or as nothing valid: text no encoder writes,
# read the way json's object_hook reads it, innermost object first
tagged_texts = st.recursive(
    st.sampled_from(['"19.90"', '"NaN"', '"2026-11-22T10:00:00+00:00"', '"2026-11-22"', "1.5", "true", "null", "[]"]),
    lambda inner: (
        st.tuples(st.sampled_from(["$decimal", "$datetime", "$date", "$duration", "x"]), inner).map(
            lambda pair: f'{{"{pair[0]}":{pair[1]}}}'
        )
        | st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
    ),
    max_leaves=8,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(nested(exact_scalars))
def test_a_value_without_floats_is_written_as_the_same_text_as_before(value: Any) -> None:
    assert encode(value) == old_encode(value)


@PROPERTY
@given(nested(exact_scalars | float_scalars))
def test_a_value_reads_back_as_it_did_and_the_old_decoder_reads_the_new_text_the_same(value: Any) -> None:
    before = old_decode(old_encode(value))
    text = encode(value)
    assert same(decode(text), before)
    assert same(old_decode(text), before)
    assert same(decode(text.encode()), before)


@PROPERTY
@given(nested(exact_scalars | float_scalars))
def test_text_written_before_reads_back_as_it_did(value: Any) -> None:
    text = old_encode(value)
    assert same(decode(text), old_decode(text))


@PROPERTY
@given(tagged_texts)
def test_tags_within_tags_and_look_alikes_read_as_before(text: str) -> None:
    assert same(decode(text), old_decode(text))


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_float_is_written_as_before_not_as_null(number: float) -> None:
    value = {"steps": (StepRun("s", "s", "log", StepStatus.SUCCEEDED, None, [1, number], None, 0.5),)}
    text = encode(value)
    assert text == old_encode(value) and "null,[1,null]" not in text
    assert same(decode(text), old_decode(text))
    assert same(decode(encode(number)), number)


@pytest.mark.parametrize("number", [2**64, 2**64 - 1, -(2**63) - 1, 10**40, -(10**40)])
def test_an_integer_beyond_64_bits_is_written_and_read_exactly(number: int) -> None:
    text = encode({"n": [number, "x"]})
    assert text == f'{{"n":[{number},"x"]}}'
    assert decode(text) == {"n": [number, "x"]} and type(decode(text)["n"][0]) is int
    assert decode(text.encode()) == {"n": [number, "x"]}


def test_a_float_written_in_another_shortest_form_reads_back_the_same() -> None:
    for number in (1e-05, 1e16, 5e-324, 1.7976931348623157e308, -0.0, 0.1, 0.00012345678901234567):
        assert same(decode(encode(number)), number) and same(old_decode(encode(number)), number)


def test_stored_text_reads_back_as_before() -> None:
    stored = {
        '{"TotalAmount":{"$decimal":"19.90"},"OrderId":"o1"}': {"TotalAmount": Decimal("19.90"), "OrderId": "o1"},
        '{"at":{"$datetime":"2026-11-22T10:00:00+00:00"},"on":{"$date":"2026-11-22"},"for":{"$duration":7200.0}}': {
            "at": dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC),
            "on": dt.date(2026, 11, 22),
            "for": dt.timedelta(hours=2),
        },
        '{"$date":"not a date"}': {"$date": "not a date"},
        '{"$decimal":"19.90","other":1}': {"$decimal": "19.90", "other": 1},
        '{"\\u0024decimal":"1.5"}': Decimal("1.5"),
        "[NaN,Infinity,-Infinity,null]": [float("nan"), float("inf"), float("-inf"), None],
        "[1e400]": [float("inf")],
        '"\\ud800 and \\udfff"': "\ud800 and \udfff",
        '{"id":"01JDV0Q6Z7T3E7JH8V7X1WQ2KE","n":123456789012345678901234567890}': {
            "id": "01JDV0Q6Z7T3E7JH8V7X1WQ2KE",
            "n": 123456789012345678901234567890,
        },
        '{"a":1,"a":2}': {"a": 2},
    }
    for text, value in stored.items():
        assert same(decode(text), value), text
        assert same(decode(text.encode("utf-8", "surrogatepass")), old_decode(text.encode("utf-8", "surrogatepass")))


def test_bytes_are_read_in_the_encoding_json_detects() -> None:
    for data in ('{"a":"é"}'.encode("utf-16"), b'\xef\xbb\xbf{"a":"\xc3\xa9"}', '{"a":"é"}'.encode()):
        assert decode(data) == {"a": "é"} == old_decode(data)


def test_text_that_is_not_json_fails_as_before() -> None:
    for text in ("", "{", '{"a":1,}', "\ufeff[1]", "[1] x"):
        with pytest.raises(json.JSONDecodeError) as new:
            decode(text)
        with pytest.raises(json.JSONDecodeError) as old:
            old_decode(text)
        assert str(new.value) == str(old.value)


def test_a_lone_surrogate_is_written_as_before() -> None:
    value = {"name": "a\ud800b", "key\udfff": 1}
    assert encode(value) == old_encode(value)
    assert decode(encode(value)) == value


def test_keys_that_are_not_strings_are_written_as_json_writes_them_or_refused_as_before() -> None:
    value = {1: "int", 2.5: "float", False: "bool", None: "none", "s": "str"}
    assert encode(value) == old_encode(value) == '{"1":"int","2.5":"float","false":"bool","null":"none","s":"str"}'
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None, not tuple"):
        encode({(1, 2): "tuple"})


def test_subclasses_of_str_int_and_float_are_written_as_their_values() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Ratio(float):
        pass

    value = [StepStatus.SUCCEEDED, Level.HIGH, Ratio(0.5), Ratio("nan"), True]
    assert encode(value) == old_encode(value) == '["succeeded",3,0.5,NaN,true]'


def test_records_and_frozen_data_are_written_as_lists_and_objects() -> None:
    step = StepRun(
        "write", "write", "save", StepStatus.SUCCEEDED, FrozenDict(a=Decimal("1.0")), {"b": (1, 2)}, None, 0.25
    )
    text = encode((step,))
    assert text == old_encode((step,))
    assert text == '[["write","write","save","succeeded",{"a":{"$decimal":"1.0"}},{"b":[1,2]},null,0.25]]'


def test_a_value_json_lacks_a_form_for_is_refused_naming_its_type() -> None:
    for value, name in (({1, 2}, "set"), ({"a": object()}, "object"), ([b"raw"], "bytes"), (dt.time(10), "time")):
        with pytest.raises(CodecError, match=f"^a {name} cannot be stored$"):
            encode(value)


def test_nesting_deeper_than_orjson_takes_is_written_by_json_and_deeper_than_python_fails_as_before() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    assert encode(value) == old_encode(value)
    assert decode(encode(value)) == old_decode(old_encode(value))
    for _ in range(100_000):
        value = [value]
    with pytest.raises(RecursionError):
        encode(value)
    with pytest.raises(RecursionError):
        decode("[" * 100_000 + "]" * 100_000)


def test_a_circular_reference_is_refused_as_before() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        encode(loop)


def test_text_is_written_unescaped() -> None:
    assert (
        encode({"note": "déjà vu \u2028 ☃", "tab": "\t\x00\x7f"})
        == '{"note":"déjà vu \u2028 ☃","tab":"\\t\\u0000\x7f"}'
    )
