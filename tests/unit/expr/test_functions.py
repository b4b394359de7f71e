"""Every built-in function: what it returns, in both call styles, and how it refuses."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from flowbus.expr import ExpressionLimitError, ExpressionRuntimeError, ExpressionSyntaxError, compile_expression
from flowbus.expr.functions import FUNCTIONS


def ev(source: str, **variables: object) -> object:
    return compile_expression(source).evaluate(variables)


def runtime_error(source: str, **variables: object) -> ExpressionRuntimeError:
    with pytest.raises(ExpressionRuntimeError) as caught:
        ev(source, **variables)
    return caught.value


T = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_documented_example_holds(name: str):
    function = FUNCTIONS[name]
    assert function.signature.startswith(f"{name}(")
    assert function.doc
    assert ev(function.example) is True


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # size
        ("size('héllo')", 5),
        ("size([1, 2])", 2),
        ("size({'a': 1})", 1),
        ("'abc'.size()", 3),
        ("data.items.size()", 3),
        # string
        ("string(null)", "null"),
        ("string(true)", "true"),
        ("string(false)", "false"),
        ("string(42)", "42"),
        ("string(-1.50)", "-1.50"),
        ("string(1e3)", "1000"),
        ("string('x')", "x"),
        ("string(t)", "2024-05-01T09:30:00Z"),
        ("string(timestamp('2024-05-01T09:30:00+02:00'))", "2024-05-01T09:30:00+02:00"),
        ("string(date('2024-05-01'))", "2024-05-01"),
        ("string(duration('90m'))", "1h30m"),
        ("string(duration('1.5s'))", "1.5s"),
        ("string(duration('-2m'))", "-2m"),
        ("string(duration('0s'))", "0s"),
        ("string(duration('250ms'))", "0.25s"),
        ("string([1, 'a', null, true, 2.50])", '[1, "a", null, true, 2.50]'),
        ("string({'k': [t], 'n': {}})", '{"k": ["2024-05-01T09:30:00Z"], "n": {}}'),
        ("string({1: 'x'})", '{"1": "x"}'),
        ("(42).string()", "42"),
        # int
        ("int(42)", 42),
        ("int(2.9)", 2),
        ("int(-2.9)", -2),
        ("int('42')", 42),
        ("int('-7')", -7),
        ("int(timestamp('1970-01-01T00:01:00Z'))", 60),
        ("int(duration('1h'))", 3600),
        ("int(duration('-1.5s'))", -1),
        # decimal
        ("decimal(2)", Decimal(2)),
        ("decimal(1.5)", Decimal("1.5")),
        ("decimal('12.50')", Decimal("12.50")),
        ("decimal('-1e3')", Decimal("-1E+3")),
        ("decimal('.5')", Decimal("0.5")),
        # bool
        ("bool(true)", True),
        ("bool('TRUE')", True),
        ("bool('false')", False),
        # round: half away from zero
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(2.4)", 2),
        ("round(7)", 7),
        ("round(1e3)", 1000),
        ("round(2.345, 2)", Decimal("2.35")),
        ("round(2.5, 0)", Decimal("3")),
        ("round(2, 2)", 2),
        ("round(1250, -2)", 1300),
        ("round(-1250, -2)", -1300),
        ("round(1234.5, -2)", Decimal("1.2E+3")),
        ("round(5, -5000)", 0),
        ("round(1.5e40)", 15 * 10**39),
        # abs, min, max, sum
        ("abs(-3)", 3),
        ("abs(3)", 3),
        ("abs(-2.5)", Decimal("2.5")),
        ("abs(duration('-1h'))", timedelta(hours=1)),
        ("abs(duration('1h'))", timedelta(hours=1)),
        ("min(3, 1, 2)", 1),
        ("min([3, 1.5, 2])", Decimal("1.5")),
        ("max('a', 'c', 'b')", "c"),
        ("max([t, t - duration('1h')])", T),
        ("sum([1, 2, 3])", 6),
        ("sum([1, 2.5])", Decimal("3.5")),
        ("sum([0.1, 0.2])", Decimal("0.3")),
        ("sum([])", 0),
        ("data.items.sum()", 6),
        # coalesce
        ("coalesce(null, 2)", 2),
        ("coalesce(data.nickname, data.name)", "Ada"),
        ("coalesce(data.missing, data.nope.deeper, 'x')", "x"),
        ("coalesce(null, null)", None),
        ("coalesce(data.items[9], 0)", 0),
        ("coalesce(data['missing'], 1)", 1),
        ("coalesce(nobody, 3)", 3),
        # text
        ("lower('ÀB')", "àb"),
        ("'ACME'.lower()", "acme"),
        ("upper('straße')", "STRASSE"),
        ("trim('  x \\n')", "x"),
        ("contains('flowbus', 'bus')", True),
        ("[1, 2].contains(2.0)", True),
        ("[1, 2].contains(true)", False),
        ("startsWith('INV-1', 'INV')", True),
        ("'INV-1'.startsWith('X')", False),
        ("endsWith('a.pdf', '.pdf')", True),
        ("join(['a', 'b'], ', ')", "a, b"),
        ("['a', 'b'].join()", "ab"),
        ("[].join(',')", ""),
        ("split('a,b,,c', ',')", ["a", "b", "", "c"]),
        ("'abc'.split('')", ["a", "b", "c"]),
        ("''.split(',')", [""]),
        # time
        ("timestamp('2024-05-01T09:30:00Z')", T),
        ("timestamp('2024-05-01T11:30:00+02:00') == t", True),
        ("timestamp(date('2024-05-01'))", datetime(2024, 5, 1, tzinfo=UTC)),
        ("timestamp(0)", datetime(1970, 1, 1, tzinfo=UTC)),
        ("timestamp(t)", T),
        ("date('2024-05-01')", date(2024, 5, 1)),
        ("date(timestamp('2024-05-01T23:00:00-05:00'))", date(2024, 5, 1)),
        ("date(date('2024-05-01'))", date(2024, 5, 1)),
        ("duration('1h30m')", timedelta(hours=1, minutes=30)),
        ("duration('90s')", timedelta(seconds=90)),
        ("duration('1.5h')", timedelta(minutes=90)),
        ("duration('2d')", timedelta(days=2)),
        ("duration('-5m')", timedelta(minutes=-5)),
        ("duration('+5m')", timedelta(minutes=5)),
        ("duration('1ms1us')", timedelta(microseconds=1001)),
        ("duration('1µs')", timedelta(microseconds=1)),
        ("duration('1500ns')", timedelta(microseconds=2)),
        ("duration(duration('1h'))", timedelta(hours=1)),
        ("t + duration('1d') - t", timedelta(days=1)),
        # type
        ("type(1)", "int"),
        ("type(1.5)", "decimal"),
        ("type('a')", "string"),
        ("type(true)", "bool"),
        ("type(null)", "null"),
        ("type([])", "list"),
        ("type({})", "map"),
        ("type(t)", "timestamp"),
        ("type(today())", "date"),
        ("type(duration('1s'))", "duration"),
    ],
)
def test_functions_return_what_they_promise(source: str, expected: object):
    result = ev(source, data={"items": [1, 2, 3], "nickname": None, "name": "Ada"}, t=T)
    assert result == expected
    assert type(result) is type(expected)


def test_now_is_an_aware_utc_timestamp():
    before = datetime.now(UTC)
    result = ev("now()")
    assert isinstance(result, datetime)
    assert result.tzinfo is UTC
    assert before <= result <= datetime.now(UTC)


def test_today_is_the_utc_date():
    assert ev("today()") in {datetime.now(UTC).date(), (datetime.now(UTC) - timedelta(seconds=5)).date()}


def test_uuid_is_a_fresh_version_4_uuid_string():
    first, second = ev("uuid()"), ev("uuid()")
    assert isinstance(first, str)
    assert uuid.UUID(first).version == 4
    assert first != second


def test_a_method_call_passes_its_receiver_first():
    assert ev("data.name.lower().startsWith('a')", data={"name": "Ada"}) is True


def test_timestamp_keeps_the_offset_it_was_given():
    result = ev("timestamp('2024-05-01T09:30:00+02:00')")
    assert isinstance(result, datetime)
    assert result.utcoffset() == timedelta(hours=2)
    assert result.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("size(1)", "size() takes a string, list or map, not int"),
        ("lower(1)", "lower() takes a string, not int"),
        ("upper(null)", "upper() takes a string, not null"),
        ("trim([])", "trim() takes a string, not list"),
        ("contains(1, 1)", "contains() takes a string or a list, not int"),
        ("contains('a', 1)", "contains() takes a string, not int"),
        ("startsWith('a', 1)", "startsWith() takes a string, not int"),
        ("endsWith(1, 'a')", "endsWith() takes a string, not int"),
        ("join('ab', ',')", "join() takes a list, not string"),
        ("join(['a', 1], ',')", "join() takes a list of strings; item 1 is int"),
        ("split(1, ',')", "split() takes a string, not int"),
        ("round('1')", "round() takes a number, not string"),
        ("round(1.5, 1.5)", "round() takes an int number of places, not decimal"),
        ("round(1.5, 5000)", "round() cannot keep 5000 places"),
        ("round(1e30, 10)", "round() to 10 places needs more than 34 digits"),
        ("round(data.long)", "round() to 0 places needs more than 34 digits"),
        ("min(7)", "min() takes a list, or several values; not one int"),
        ("abs('x')", "abs() takes a number or a duration, not string"),
        ("min([])", "min() of an empty list"),
        ("max(1, 'a')", "max() needs values that compare with each other, not int and string"),
        ("sum([1, 'a'])", "sum() takes a list of numbers; item 1 is string"),
        ("sum(1)", "sum() takes a list, not int"),
        ("int('4.5')", "cannot convert string '4.5' to int"),
        ("int('1_000')", "cannot convert string '1_000' to int"),
        ("int(true)", "cannot convert bool to int"),
        ("int(null)", "cannot convert null to int"),
        ("decimal('NaN')", "cannot convert string 'NaN' to decimal"),
        ("decimal(data.zeros)", "cannot convert string"),
        ("decimal(true)", "cannot convert bool to decimal"),
        ("bool('yes')", "cannot convert string 'yes' to bool"),
        ("bool(1)", "cannot convert int to bool"),
        ("timestamp('2024-05-01T09:30:00')", "no time zone: add Z or an offset like +02:00"),
        ("timestamp('May 1st')", "expected ISO 8601"),
        ("timestamp(1.5)", "cannot convert decimal to timestamp"),
        ("timestamp(10 * 1000000 * 1000000)", "out of range"),
        ("date('2024-5-1')", "expected YYYY-MM-DD"),
        ("date('2024-13-01')", "expected YYYY-MM-DD"),
        ("date(1)", "cannot convert int to date"),
        ("duration('5')", "expected a form like 1h30m"),
        ("duration('1h 30m')", "expected a form like 1h30m"),
        ("duration('')", "expected a form like 1h30m"),
        ("duration('99999999999d')", "out of range"),
        ("duration(5)", "cannot convert int to duration"),
        ("{'a': 1}.size().lower()", "lower() takes a string, not int"),
    ],
)
def test_functions_refuse_what_they_cannot_take(source: str, reason: str):
    data = {"long": Decimal("1" * 40 + ".5"), "zeros": "1" + "0" * 100}
    assert reason in runtime_error(source, data=data).reason


def test_a_function_error_points_at_the_function_name():
    error = runtime_error("1 + size(2)")
    assert error.column == 5


def test_a_decimal_string_out_of_range_is_a_limit_error():
    with pytest.raises(ExpressionLimitError):
        ev("decimal('1e99999')")


def test_an_unknown_function_suggests_near_names():
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression("lenght(data.items)")
    assert str(caught.value).startswith("unknown function 'lenght' at column 1; did you mean: size?")


def test_an_unknown_method_suggests_near_names():
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression("data.name.toLowerCase()")
    assert caught.value.column == 11
    assert "did you mean: lower" in str(caught.value)


def test_an_unknown_function_with_no_near_name_lists_them_all():
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression("qqq(1)")
    assert "known functions: abs, bool, coalesce," in str(caught.value)
    assert re.search(r"uuid$", str(caught.value).splitlines()[0])


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("size()", "size() takes 1 argument, got 0"),
        ("size(1, 2)", "size() takes 1 argument, got 2"),
        ("'a'.size(1)", "size() takes 1 argument, got 2 counting the value before '.size'"),
        ("round(1, 2, 3)", "round() takes 1 to 2 arguments, got 3"),
        ("min()", "min() takes at least 1 argument, got 0"),
        ("now(1)", "now() takes 0 arguments, got 1"),
    ],
)
def test_a_wrong_number_of_arguments_is_a_syntax_error(source: str, reason: str):
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression(source)
    assert caught.value.reason == reason


def test_has_tells_a_present_field_from_a_missing_one():
    data = {"a": {"b": None, "list": [1]}, "n": None}
    assert ev("has(data.a.b)", data=data) is True
    assert ev("has(data.a.c)", data=data) is False
    assert ev("has(data.x.y.z)", data=data) is False
    assert ev("has(data.n.y)", data=data) is False
    assert ev("has(data.a['b'])", data=data) is True
    assert ev("has(data.a.list[0])", data=data) is True
    assert ev("has(data.a.list[1])", data=data) is False
    assert ev("has(nobody.x)", data=data) is False


def test_has_still_refuses_a_field_of_a_non_map():
    assert "data.s is a string, so it has no field 'x'" in runtime_error("has(data.s.x)", data={"s": "text"}).reason


def test_coalesce_stops_at_the_first_value():
    assert ev("coalesce(1, 1 / 0)") == 1
