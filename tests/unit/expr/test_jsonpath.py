"""JSONPath: compiling, finding, the singular fast path and NOTHING."""

from __future__ import annotations

import io
from decimal import Decimal
from types import MappingProxyType

import pytest

from flowbus.expr import (
    NOTHING,
    ExpressionLimitError,
    ExpressionRuntimeError,
    ExpressionSyntaxError,
    compile_path,
)

DOC = {
    "event": "upsert_company",
    "payload": {"company": {"domain": "acme.test", "name": None}, "tags": ["a", "b", "c"]},
    "a b": [1, 2],
    "items": [{"price": Decimal("9.50")}, {"price": 12}],
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("$", DOC),
        ("$.event", "upsert_company"),
        ("$.payload.company.domain", "acme.test"),
        ("$['payload']['company']['domain']", "acme.test"),
        ("$.payload.tags[0]", "a"),
        ("$.payload.tags[-1]", "c"),
        ("$['a b'][-1]", 2),
        ("$.payload.company.name", None),
    ],
)
def test_a_singular_path_finds_one_value(source: str, expected: object):
    path = compile_path(source)
    assert path.singular is True
    assert path.find_one(DOC) == expected
    assert path.find(DOC) == [expected]


@pytest.mark.parametrize(
    "source",
    [
        "$.missing",
        "$.payload.tags[3]",
        "$.payload.tags[-4]",
        "$.payload.tags.x",
        "$.event[0]",
        "$.payload[0]",
        "$.event.x",
    ],
)
def test_a_singular_path_that_finds_nothing_returns_nothing(source: str):
    path = compile_path(source)
    assert path.find_one(DOC) is NOTHING
    assert path.find(DOC) == []


def test_nothing_differs_from_a_found_null():
    assert compile_path("$.payload.company.name").find_one(DOC) is None
    assert compile_path("$.payload.company.nope").find_one(DOC) is NOTHING


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("$.payload.tags[*]", ["a", "b", "c"]),
        ("$.payload.tags[0:2]", ["a", "b"]),
        ("$.payload.tags[0, 2]", ["a", "c"]),
        ("$.items[?@.price > 10].price", [12]),
        ("$.items[?@.price < 10].price", [Decimal("9.50")]),
        ("$..domain", ["acme.test"]),
        ("$.items[*].price", [Decimal("9.50"), 12]),
    ],
)
def test_a_general_path_finds_every_match_in_order(source: str, expected: list[object]):
    path = compile_path(source)
    assert path.singular is False
    assert path.find(DOC) == expected
    assert path.find_one(DOC) == expected[0]


def test_a_general_path_that_finds_nothing_returns_nothing():
    path = compile_path("$.items[?@.price > 100]")
    assert path.find(DOC) == []
    assert path.find_one(DOC) is NOTHING


def test_a_string_document_is_a_leaf_not_json_text():
    assert compile_path("$").find('{"a": 1}') == ['{"a": 1}']
    assert compile_path("$[*]").find('{"a": 1}') == []
    assert compile_path("$.a").find_one('{"a": 1}') is NOTHING


def test_a_path_never_reads_a_file():
    with pytest.raises(ExpressionRuntimeError, match="not files"):
        compile_path("$[*]").find(io.StringIO('{"a": 1}'))


def test_paths_read_any_mapping_and_tuples():
    data = MappingProxyType({"a": ({"b": 1},)})
    assert compile_path("$.a[0].b").find_one(data) == 1
    assert compile_path("$.a[*].b").find(data) == [1]


@pytest.mark.parametrize(
    ("source", "column"),
    [("$.a.", 5), ("$[?@.a == 1", 12), ("$.a ", 4), (" $.a", 1), ("$['a\\q']", 4), ("$[1,", 5)],
)
def test_a_path_syntax_error_has_a_column(source: str, column: int):
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_path(source)
    assert caught.value.column == column
    assert caught.value.source == source
    assert f"at column {column}" in str(caught.value)


def test_a_path_must_start_with_a_dollar():
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_path("payload.company")
    assert str(caught.value).startswith("a path must start with '$' at column 1")


def test_a_descent_past_the_engine_depth_is_a_limit_error():
    deep: dict[str, object] = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(ExpressionLimitError):
        compile_path("$..a").find(deep)
