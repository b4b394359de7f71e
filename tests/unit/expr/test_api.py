"""The public surface of flowbus.expr: its names, its records, its error tree."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

import flowbus.expr
from flowbus.errors import FlowbusError
from flowbus.expr import (
    DEFAULT_LIMITS,
    NOTHING,
    Expression,
    ExpressionError,
    ExpressionLimitError,
    ExpressionRuntimeError,
    ExpressionSyntaxError,
    JsonPath,
    Limits,
    compile_expression,
    compile_path,
)


def test_the_package_exports_exactly_its_public_api():
    assert sorted(flowbus.expr.__all__) == [
        "DEFAULT_LIMITS",
        "Expression",
        "ExpressionError",
        "ExpressionLimitError",
        "ExpressionRuntimeError",
        "ExpressionSyntaxError",
        "JsonPath",
        "Limits",
        "NOTHING",
        "compile_expression",
        "compile_path",
    ]


def test_every_expression_error_descends_from_the_flowbus_root():
    assert issubclass(ExpressionError, FlowbusError)
    for error in (ExpressionSyntaxError, ExpressionRuntimeError, ExpressionLimitError):
        assert issubclass(error, ExpressionError)
    assert not issubclass(ExpressionLimitError, ExpressionRuntimeError)


def test_an_error_without_a_message_says_its_docstring():
    assert str(ExpressionRuntimeError()) == "The expression failed while it was evaluated."
    assert ExpressionError().column is None


def test_an_error_carries_source_and_column_apart_from_its_message():
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression("data.a + )")
    error = caught.value
    assert error.source == "data.a + )"
    assert error.column == 10
    assert error.reason == "unexpected ')'"
    assert str(error) == "unexpected ')' at column 10\n  data.a + )\n           ^"
    assert error.message == str(error)


def test_limits_have_the_documented_defaults():
    assert Limits() == DEFAULT_LIMITS
    assert dataclasses.asdict(DEFAULT_LIMITS) == {
        "max_source_length": 2000,
        "max_depth": 64,
        "max_operations": 10_000,
        "max_string_bytes": 1_048_576,
        "max_list_items": 10_000,
        "max_int_digits": 4000,
    }


def test_limits_are_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_depth = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limits(100)  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes",
    [{"max_depth": 0}, {"max_operations": -1}, {"max_depth": 101}, {"max_int_digits": 5000}, {"max_list_items": 1.5}],
)
def test_limits_refuse_nonsense(changes: dict[str, object]):
    with pytest.raises(ValueError, match="Limits"):
        Limits(**changes)  # type: ignore[arg-type]


def test_nothing_is_a_falsy_singleton_that_survives_copies():
    assert not NOTHING
    assert repr(NOTHING) == "NOTHING"
    assert copy.copy(NOTHING) is NOTHING
    assert copy.deepcopy(NOTHING) is NOTHING
    assert pickle.loads(pickle.dumps(NOTHING)) is NOTHING
    assert NOTHING is not None


def test_compiled_objects_keep_their_source():
    expression = compile_expression("data.a + inputs.b")
    assert isinstance(expression, Expression)
    assert expression.source == "data.a + inputs.b"
    assert expression.variables == frozenset({"data", "inputs"})
    assert repr(expression) == "Expression('data.a + inputs.b')"
    path = compile_path("$.a")
    assert isinstance(path, JsonPath)
    assert path.source == "$.a"
    assert repr(path) == "JsonPath('$.a')"


def test_compiling_something_other_than_text_is_a_type_error():
    with pytest.raises(TypeError):
        compile_expression(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        compile_path(None)  # type: ignore[arg-type]


def test_evaluating_with_something_other_than_a_mapping_is_a_type_error():
    with pytest.raises(TypeError):
        compile_expression("1").evaluate([])  # type: ignore[arg-type]


def test_an_expression_can_be_evaluated_many_times():
    expression = compile_expression("data.n * 2")
    assert [expression.evaluate({"data": {"n": n}}) for n in range(3)] == [0, 2, 4]
