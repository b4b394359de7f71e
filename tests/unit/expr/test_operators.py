"""Every operator, on every pair of types it accepts, and the errors for the rest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from flowbus.expr import ExpressionLimitError, ExpressionRuntimeError, compile_expression


def ev(source: str, **variables: object) -> object:
    return compile_expression(source).evaluate(variables)


def runtime_error(source: str, **variables: object) -> ExpressionRuntimeError:
    with pytest.raises(ExpressionRuntimeError) as caught:
        ev(source, **variables)
    return caught.value


T = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
D = date(2024, 5, 1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# -- arithmetic --------------------------------------------------------------------------


def test_decimal_addition_is_exact():
    assert ev("0.1 + 0.2 == 0.3") is True
    assert ev("0.1 + 0.2") == Decimal("0.3")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 0.5", Decimal("1.5")),
        ("0.5 + 1", Decimal("1.5")),
        ("'a' + 'b'", "ab"),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("5 - 7", -2),
        ("5 - 0.5", Decimal("4.5")),
        ("3 * 4", 12),
        ("1.5 * 2", Decimal("3.0")),
        ("6 / 3", 2),
        ("-6 / 3", -2),
        ("7 / 2", Decimal("3.5")),
        ("1 / 3", Decimal("0.3333333333333333333333333333333333")),
        ("7.5 / 2.5", Decimal("3")),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("7.5 % 2", Decimal("1.5")),
        ("-7.5 % 2", Decimal("-1.5")),
        ("-(3)", -3),
        ("-(1.5)", Decimal("-1.5")),
        ("-data.n", -4),
    ],
)
def test_arithmetic_on_numbers(source: str, expected: object):
    result = ev(source, data={"n": 4})
    assert result == expected
    assert type(result) is type(expected)


def test_int_arithmetic_stays_int_and_decimal_results_keep_their_places():
    assert type(ev("2 * 3 + 4 - 1")) is int
    assert str(ev("1.10 + 1")) == "2.10"


def test_a_float_in_the_data_is_read_as_the_decimal_of_its_repr():
    assert ev("data.x + 0.2", data={"x": 0.1}) == Decimal("0.3")
    assert type(ev("data.x", data={"x": 0.1})) is Decimal


@pytest.mark.parametrize("source", ["1 / 0", "1.5 / 0", "1 % 0", "1.5 % 0", "0 / 0.0"])
def test_division_by_zero_is_a_runtime_error(source: str):
    assert runtime_error(source).reason == "division by zero"


def test_a_decimal_remainder_that_needs_too_many_digits_is_a_runtime_error():
    assert "cannot compute this exactly" in runtime_error("1e40 % 3").reason


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("'a' + 1.5", "cannot add string and decimal"),
        ("1 + 'a'", "cannot add int and string"),
        ("true + 1", "cannot add bool and int"),
        ("null + 1", "cannot add null and int"),
        ("[1] + 'a'", "cannot add list and string"),
        ("{'a': 1} + {'b': 2}", "cannot add map and map"),
        ("'a' - 'b'", "cannot subtract string from string"),
        ("'a' * 3", "cannot multiply string by int"),
        ("'a' / 3", "cannot divide string by int"),
        ("'a' % 3", "cannot take the remainder of string by int"),
        ("-'a'", "cannot negate string"),
        ("!1", "'!' needs a bool, not int"),
    ],
)
def test_arithmetic_type_errors_name_both_types(source: str, reason: str):
    assert runtime_error(source).reason == reason


def test_a_type_error_points_at_its_operator():
    error = runtime_error("data.name + data.total", data={"name": "x", "total": Decimal(1)})
    assert error.column == 11
    assert str(error) == ("cannot add string and decimal\n  data.name + data.total\n            ^")


# -- time arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("t + h", T + HOUR),
        ("h + t", T + HOUR),
        ("t - h", T - HOUR),
        ("t - (t - h)", HOUR),
        ("h + h", 2 * HOUR),
        ("h - h", timedelta(0)),
        ("h * 3", 3 * HOUR),
        ("3 * h", 3 * HOUR),
        ("-h", -HOUR),
        ("d + day", D + DAY),
        ("day + d", D + DAY),
        ("d - day", D - DAY),
        ("(d + day) - d", DAY),
    ],
)
def test_timestamps_dates_and_durations_add_up(source: str, expected: object):
    assert ev(source, t=T, h=HOUR, d=D, day=DAY) == expected


def test_a_date_moves_only_by_whole_days():
    assert "whole days" in runtime_error("d + h", d=D, h=HOUR).reason


@pytest.mark.parametrize("source", ["t + h", "t - h"])
def test_a_timestamp_out_of_range_is_a_runtime_error(source: str):
    huge = timedelta(days=999_999_999)
    assert "out of range" in runtime_error(source, t=T, h=huge).reason


def test_subtracting_a_date_from_a_timestamp_is_a_type_error():
    assert runtime_error("t - d", t=T, d=D).reason == "cannot subtract date from timestamp"


# -- comparison ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1.0 == 1", True),
        ("1 != 2", True),
        ("'a' == 'a'", True),
        ("'a' != 'a'", False),
        ("null == null", True),
        ("null == 0", False),
        ("true == 1", False),
        ("false == 0", False),
        ("1 == '1'", False),
        ("1 != '1'", True),
        ("[1, 2] == [1, 2.0]", True),
        ("[1] == [true]", False),
        ("[1] == [1, 2]", False),
        ("{'a': [1]} == {'a': [1.0]}", True),
        ("{'a': 1} == {'b': 1}", False),
        ("{'a': 1} == {'a': 1, 'b': 2}", False),
        ("{'a': true} == {'a': 1}", False),
        ("t == t", True),
        ("t == d", False),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("2.5 >= 3", False),
        ("'a' < 'b'", True),
        ("false < true", True),
        ("d < d + day", True),
        ("t > t - h", True),
        ("h < day", True),
    ],
)
def test_comparisons(source: str, expected: bool):
    assert ev(source, t=T, d=D, h=HOUR, day=DAY) is expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("1 < 'a'", "cannot compare int and string with '<'"),
        ("'a' <= 1", "cannot compare string and int with '<='"),
        ("null > 1", "cannot compare null and int with '>'"),
        ("[1] >= [1]", "cannot compare list and list with '>='"),
        ("t < d", "cannot compare timestamp and date with '<'"),
    ],
)
def test_ordering_incompatible_types_is_a_type_error_naming_both(source: str, reason: str):
    assert runtime_error(source, t=T, d=D).reason == reason


def test_equality_compares_aware_timestamps_across_offsets():
    assert ev("timestamp('2024-05-01T11:30:00+02:00') == t", t=T) is True


# -- logic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true && true", True),
        ("true && false", False),
        ("false && true", False),
        ("false || true", True),
        ("false || false", False),
        ("!false", True),
        ("false && data.missing", False),
        ("true || data.missing", True),
        ("false && 1", False),
    ],
)
def test_logic_short_circuits(source: str, expected: bool):
    assert ev(source, data={}) is expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("1 && true", "'&&' needs bool operands; the left one is int"),
        ("true && 'x'", "'&&' needs bool operands; the right one is string"),
        ("null || true", "'||' needs bool operands; the left one is null"),
        ("false || 0", "'||' needs bool operands; the right one is int"),
    ],
)
def test_logic_needs_bools(source: str, reason: str):
    assert runtime_error(source).reason == reason


def test_the_conditional_picks_a_branch_and_evaluates_only_that_one():
    assert ev("data.n > 1 ? 'many' : data.missing", data={"n": 2}) == "many"
    assert ev("data.n > 1 ? data.missing : 'one'", data={"n": 1}) == "one"


def test_the_conditional_needs_a_bool():
    assert runtime_error("1 ? 2 : 3").reason == "the condition before '?' must be a bool, not int"


# -- membership ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 in [1, 2]", True),
        ("1.0 in [1, 2]", True),
        ("true in [1]", False),
        ("3 in []", False),
        ("[1] in [[1], [2]]", True),
        ("'a' in {'a': 1}", True),
        ("'b' in {'a': 1}", False),
        ("1 in {1: 'x'}", True),
        ("true in {1: 'x'}", False),
        ("null in {'a': 1}", False),
        ("'bus' in 'flowbus'", True),
        ("'car' in 'flowbus'", False),
        ("'' in 'x'", True),
        ("1 in data.t", True),
    ],
)
def test_in_finds_elements_keys_and_substrings(source: str, expected: bool):
    assert ev(source, data={"t": (1, 2)}) is expected


def test_in_finds_a_bool_key_by_type():
    assert ev("true in data.m", data={"m": {True: 1}}) is True
    assert ev("true in data.m", data={"m": {1: 1}}) is False


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("1 in 'abc'", "cannot look for int in a string"),
        ("1 in 5", "'in' needs a list, map or string on its right, not int"),
        ("[1] in {'a': 1}", "a map key cannot be a list"),
    ],
)
def test_in_refuses_what_cannot_contain(source: str, reason: str):
    assert runtime_error(source).reason == reason


# -- int bound -----------------------------------------------------------------------------


def test_an_integer_result_past_the_digit_limit_is_a_limit_error():
    with pytest.raises(ExpressionLimitError, match="max_int_digits"):
        ev("data.n * data.n", data={"n": 10**3000})
    with pytest.raises(ExpressionLimitError, match="max_int_digits"):
        ev("data.n + data.n", data={"n": 10**4000 - 1})


# -- specialized shapes give the general answers -------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data.d * 1.2", Decimal("12.60")),
        ("data.n * 1.2", Decimal("3.6")),
        ("data.n * 2", 6),
        ("data.d + 1", Decimal("11.5")),
        ("data.n - 0.5", Decimal("2.5")),
        ("data.h * 2", timedelta(hours=2)),
        ("data.s + 'x' + 'y'", "abxy"),
        ("data.n + 1 + 2.5", Decimal("6.5")),
        ("[1] + data.l + [3]", [1, 2, 3]),
    ],
)
def test_literal_operands_and_chains_compute_like_the_general_operators(source: str, expected: object):
    data = {"d": Decimal("10.5"), "n": 3, "h": HOUR, "s": "ab", "l": [2]}
    result = ev(source, data=data)
    assert result == expected
    assert type(result) is type(expected)


def test_literal_operands_raise_the_general_errors():
    assert runtime_error("data.s * 1.2", data={"s": "a"}).reason == "cannot multiply string by decimal"
    with pytest.raises(ExpressionLimitError, match="decimal result is too large"):
        ev("data.d * 1e6000", data={"d": Decimal("1e6000")})
    error = runtime_error("data.s + 'x' + data.n + 'y'", data={"s": "a", "n": 1})
    assert error.reason == "cannot add string and int"
    assert error.column == 14
