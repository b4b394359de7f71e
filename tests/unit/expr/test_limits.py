"""Every limit, with its own message, at compile time and at evaluation."""

from __future__ import annotations

import inspect
import sys
from decimal import Decimal

import pytest

from flowbus.expr import (
    DEFAULT_LIMITS,
    ExpressionLimitError,
    ExpressionRuntimeError,
    Limits,
    compile_expression,
    compile_path,
)

ROOMY = Limits(max_source_length=200_000, max_depth=100)


def limit_error(source: str, limits: Limits = DEFAULT_LIMITS, **variables: object) -> ExpressionLimitError:
    with pytest.raises(ExpressionLimitError) as caught:
        compile_expression(source, limits=limits).evaluate(variables)
    return caught.value


# -- source length -------------------------------------------------------------------------


def test_a_source_past_the_length_limit_is_refused_before_parsing():
    error = limit_error("1 + " * 600 + "1")
    assert error.reason == "expression is 2401 characters long, more than 2000 (limit max_source_length)"


def test_a_path_past_the_length_limit_is_refused():
    with pytest.raises(ExpressionLimitError, match="max_source_length"):
        compile_path("$" + ".a" * 1000)


def test_a_source_at_the_length_limit_compiles():
    assert compile_expression("'" + "x" * 1998 + "'").evaluate({}) == "x" * 1998


# -- nesting depth -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "(" * 10_000 + "1" + ")" * 10_000,
        "!" * 10_000 + "true",
        "[" * 10_000,
        "{'a':" * 10_000,
        "f(" * 10_000,
        "data" + ".a" * 10_000,
        "data" + "[0]" * 10_000,
        "1" + " + 1" * 10_000,
        "true ? 1 : " * 10_000 + "2",
        "size(" * 10_000,
        "-(" * 10_000,
    ],
)
def test_deep_nesting_is_a_limit_error_not_a_recursion_error(source: str):
    with pytest.raises(ExpressionLimitError) as caught:
        compile_expression(source, limits=ROOMY)
    assert caught.value.reason == "expression is nested more than 100 levels deep (limit max_depth)"


def test_nesting_up_to_the_limit_compiles_and_evaluates():
    source = "(" * 63 + "1" + ")" * 63
    assert compile_expression(source).evaluate({}) == 1
    assert compile_expression("!" * 63 + "true").evaluate({}) is False


def test_the_nesting_error_points_where_the_limit_was_passed():
    error = limit_error("(" * 70 + "1" + ")" * 70)
    assert error.column == 65


def test_a_deeply_nested_path_is_a_limit_error():
    with pytest.raises(ExpressionLimitError):
        compile_path("$" + "[?@" * 600, limits=ROOMY)


def test_data_nested_past_the_depth_limit_is_a_limit_error_when_compared():
    deep: list[object] = []
    node = deep
    for _ in range(100):
        node.append([])
        node = node[0]  # type: ignore[assignment]
    with pytest.raises(ExpressionLimitError, match="max_depth"):
        compile_expression("data.a == data.a").evaluate({"data": {"a": deep}})
    with pytest.raises(ExpressionLimitError, match="max_depth"):
        compile_expression("string(data.a)").evaluate({"data": {"a": deep}})


def test_a_value_that_contains_itself_is_a_limit_error_not_a_hang():
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ExpressionLimitError):
        compile_expression("string(data.l)").evaluate({"data": {"l": loop}})
    with pytest.raises(ExpressionLimitError):
        compile_expression("data.l == data.l").evaluate({"data": {"l": loop}})


# -- operations ----------------------------------------------------------------------------


def test_an_expression_bigger_than_the_budget_is_refused_at_compile_time():
    error = limit_error("1 + 2 + 3", Limits(max_operations=4))
    assert error.reason == "expression needs more than 4 operations (limit max_operations)"


def test_an_expression_within_the_budget_runs():
    assert compile_expression("1 + 2 + 3", limits=Limits(max_operations=5)).evaluate({}) == 6


@pytest.mark.parametrize(
    "source",
    [
        "sum(data.big)",
        "data.big.join(',')",
        "99 in data.big",
        "data.big.contains(99)",
        "data.big == data.big",
        "string(data.big)",
        "max(data.big)",
        "min(data.big)",
        "data.text.split(',')",
    ],
)
def test_work_that_grows_with_the_data_spends_the_budget(source: str):
    data = {"big": ["1"] * 200 if "join" in source else [1] * 200, "text": ",".join("x" * 200)}
    limits = Limits(max_operations=100)
    error = limit_error(source, limits, data=data)
    assert error.reason == "expression needs more than 100 operations (limit max_operations)"
    assert compile_expression(source, limits=Limits(max_operations=1000)).evaluate({"data": data}) is not None


def test_the_budget_is_per_evaluation():
    expression = compile_expression("sum(data.l)", limits=Limits(max_operations=50))
    for _ in range(10):
        assert expression.evaluate({"data": {"l": [1] * 40}}) == 40


# -- string size ---------------------------------------------------------------------------

SMALL = Limits(max_string_bytes=16)


@pytest.mark.parametrize(
    "source",
    [
        "data.s + data.s + data.s",
        "'0123456789' + '0123456789'",
        "[data.s, data.s, data.s].join('')",
        "data.s.upper() + '12345678901'",
        "string([data.s, data.s])",
        "string(12345678901234567)",
        "string(1.2345678901234567)",
        "string(1e20)",
        "upper(data.long)",
        "lower(data.long)",
        "trim(data.long)",
    ],
)
def test_a_string_past_the_size_limit_is_a_limit_error(source: str):
    error = limit_error(source, SMALL, data={"s": "abcdefgh", "long": "y" * 40})
    assert error.reason == "string result is longer than 16 bytes (limit max_string_bytes)"


def test_the_string_limit_counts_utf8_bytes():
    assert compile_expression("data.s + data.s", limits=SMALL).evaluate({"data": {"s": "éééé"}}) == "é" * 8
    error = limit_error("data.s + data.s + 'é'", SMALL, data={"s": "éééé"})
    assert "max_string_bytes" in error.reason
    assert error.column == 17


def test_strings_read_from_the_data_are_not_limited():
    assert compile_expression("data.long", limits=SMALL).evaluate({"data": {"long": "z" * 100}}) == "z" * 100


# -- list size -----------------------------------------------------------------------------

FEW = Limits(max_list_items=3)


@pytest.mark.parametrize(
    "source",
    [
        "[1, 2] + [3, 4]",
        "data.l + data.l",
        "'a,b,c,d'.split(',')",
        "'abcd'.split('')",
        "[1, 2, 3, 4]",
        "{'a': 1, 'b': 2, 'c': 3, 'd': 4}",
    ],
)
def test_a_list_past_the_size_limit_is_a_limit_error(source: str):
    error = limit_error(source, FEW, data={"l": [1, 2]})
    assert error.reason == "list result has more than 3 items (limit max_list_items)"


# -- integer size --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "data.n * data.n",
        "data.n + data.n",
        "data.n - -data.n",
        "int(data.digits)",
        "int(1e30)",
        "round(1e30)",
        "sum([data.n, data.n])",
        "round(data.n, -1) * 10",
    ],
)
def test_an_integer_past_the_digit_limit_is_a_limit_error(source: str):
    limits = Limits(max_int_digits=20)
    error = limit_error(source, limits, data={"n": 9 * 10**19, "digits": "1" * 25})
    assert error.reason == "integer result has more than 20 digits (limit max_int_digits)"


def test_an_integer_literal_past_the_digit_limit_is_refused_at_compile_time():
    with pytest.raises(ExpressionLimitError, match="max_int_digits"):
        compile_expression("1" * 30, limits=Limits(max_int_digits=20))
    with pytest.raises(ExpressionLimitError, match="max_int_digits"):
        compile_expression("0x" + "f" * 30, limits=Limits(max_int_digits=20))
    with pytest.raises(ExpressionLimitError, match="max_int_digits"):
        compile_expression("1" * 5000, limits=Limits(max_source_length=10_000))


def test_a_decimal_result_past_the_exponent_range_is_a_limit_error():
    error = limit_error("1e6000 * 1e6000")
    assert error.reason == "decimal result is too large (the largest exponent is 6144)"
    with pytest.raises(ExpressionLimitError, match="out of the decimal range"):
        compile_expression("1e9999")


def test_a_decimal_sum_past_the_exponent_range_is_a_limit_error():
    with pytest.raises(ExpressionLimitError, match="decimal result is too large"):
        compile_expression("9e6144 + 9e6144").evaluate({})
    with pytest.raises(ExpressionLimitError, match="decimal result is too large"):
        compile_expression("data.a + data.a").evaluate({"data": {"a": Decimal("9e6144")}})


def test_printing_an_integer_past_the_digit_limit_is_a_limit_error():
    with pytest.raises(ExpressionLimitError, match="max_int_digits"):
        compile_expression("string(data.n)").evaluate({"data": {"n": 10**4001}})


def test_printing_an_integer_past_pythons_own_digit_limit_is_a_limit_error():
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(ExpressionLimitError, match="too long to convert"):
            compile_expression("string(data.n)").evaluate({"data": {"n": 10**1000}})
    finally:
        sys.set_int_max_str_digits(previous)


def test_text_too_long_to_be_a_timestamp_is_refused_unparsed():
    with pytest.raises(ExpressionRuntimeError, match="expected ISO 8601"):
        compile_expression("timestamp(data.t)").evaluate({"data": {"t": "2024-01-01T00:00:00Z" * 10}})


def test_strings_joined_near_the_limit_are_still_exact():
    expression = compile_expression("'ab' + 'cd' + data.s", limits=Limits(max_string_bytes=8))
    assert expression.evaluate({"data": {"s": "ef"}}) == "abcdef"
    error = limit_error("'ab' + 'cd' + data.s + 'gh' + 'ij'", Limits(max_string_bytes=8), data={"s": "ef"})
    assert error.column == 29


@pytest.mark.parametrize("margin", [30, 60, 120, 240])
def test_a_nearly_exhausted_call_stack_gives_a_limit_error_not_a_recursion_error(margin: int):
    source = "(" * 60 + "data.a" + ")" * 60

    def at_depth(depth: int) -> object:
        if depth > 0:
            return at_depth(depth - 1)
        try:
            return compile_expression(source).evaluate({"data": {"a": 1}})
        except ExpressionLimitError as error:
            return error

    frames = len(inspect.stack())
    outcome = at_depth(sys.getrecursionlimit() - frames - margin)
    assert outcome == 1 or isinstance(outcome, ExpressionLimitError)
