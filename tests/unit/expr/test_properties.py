"""Properties over random input: expressions only ever return a value or raise an
ExpressionError; decimal arithmetic is exact; the singular-path fast path agrees with
the JSONPath engine."""

from __future__ import annotations

import decimal
import string
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import jsonpath
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbus.expr import NOTHING, ExpressionError, Limits, compile_expression, compile_path
from flowbus.expr.functions import FUNCTIONS

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Small enough limits that random input reaches them, large enough to compute something.
LIMITS = Limits(max_operations=2_000, max_string_bytes=4_096, max_list_items=200, max_int_digits=200)
VARIABLES = ["data", "item", "index", "vars"]
RESULT_TYPES = (type(None), bool, int, Decimal, str, datetime, date, timedelta, list, tuple, Mapping)

# -- random data ---------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "name", "total", "items", "a b", "0", "1"])
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-5, max_value=5),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    aware_datetimes,
    st.dates(),
    st.timedeltas(),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(KEYS, children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4).map(MappingProxyType),
    ),
    max_leaves=20,
)
variables = st.fixed_dictionaries(
    {
        "data": st.dictionaries(st.sampled_from(["a", "b", "name", "total", "items", "size"]), documents, max_size=5),
        "item": documents,
        "index": st.integers(min_value=-3, max_value=3),
    }
)

# -- random expressions from the grammar ---------------------------------------------------

string_literals = st.text(alphabet=string.ascii_letters + " ,.-é\\'\"\n", max_size=8).map(
    lambda text: "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
)
number_literals = st.one_of(
    st.integers(min_value=0, max_value=10**40).map(str),
    st.decimals(min_value=0, max_value=10**12, places=3, allow_nan=False).map(str),
    st.sampled_from(["0", "1", "2", "0.1", "1e3", "2.5e-3", "0x1F", "1e6000", "99999999999999999999"]),
)
time_literals = st.sampled_from(
    ["timestamp('2024-05-01T09:30:00Z')", "date('2024-05-01')", "duration('1h30m')", "now()", "today()"]
)
atoms = st.one_of(
    number_literals,
    string_literals,
    st.sampled_from(["true", "false", "null", "[]", "{}", "data", "item", "index", "vars", "nobody"]),
    time_literals,
)
FIELDS = ["a", "b", "name", "total", "items", "size", "in"]
BINARY = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in"]
NAMES = sorted(FUNCTIONS)


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "!"]), children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(children, st.sampled_from(FIELDS)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(st.sampled_from(NAMES), st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, st.sampled_from(NAMES), st.lists(children, max_size=2)).map(
            lambda t: f"{t[0]}.{t[1]}({', '.join(t[2])})"
        ),
        st.lists(children, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
        st.tuples(st.sampled_from(["data", "item"]), st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)).map(
            lambda t: "has(" + t[0] + "".join(f".{f}" for f in t[1]) + ")"
        ),
    )


expressions = st.recursive(atoms, _grow, max_leaves=12)


def check_contract(source: str, data: dict[str, Any]) -> None:
    """Compile and evaluate: a value of an admitted type, or an ExpressionError."""
    try:
        expression = compile_expression(source, limits=LIMITS)
    except ExpressionError as error:
        assert error.source == source[: LIMITS.max_source_length] or error.source == ""
        return
    try:
        result = expression.evaluate(data)
    except ExpressionError as error:
        assert error.column is None or 1 <= error.column <= len(source) + 1
        return
    assert isinstance(result, RESULT_TYPES), type(result)
    assert not isinstance(result, float)


@PROPERTY
@given(source=st.text(max_size=60), data=variables)
def test_random_text_only_ever_gives_a_value_or_an_expression_error(source: str, data: dict[str, Any]):
    check_contract(source, data)


@PROPERTY
@given(
    source=st.text(alphabet="()[]{}.,:?!-+*/%<>=&|'\"\\ 0123456789abcdehinlrstux_", max_size=60),
    data=variables,
)
def test_random_punctuation_only_ever_gives_a_value_or_an_expression_error(source: str, data: dict[str, Any]):
    check_contract(source, data)


@PROPERTY
@given(source=expressions, data=variables)
def test_random_expressions_only_ever_give_a_value_or_an_expression_error(source: str, data: dict[str, Any]):
    check_contract(source, data)


@PROPERTY
@given(source=expressions)
def test_compiling_is_deterministic_in_what_it_accepts(source: str):
    outcomes = []
    for _ in range(2):
        try:
            compile_expression(source, limits=LIMITS)
            outcomes.append("ok")
        except ExpressionError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


# -- decimal arithmetic is exact ------------------------------------------------------------

money = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=4, allow_nan=False, allow_infinity=False
)


@settings(max_examples=200, deadline=None)
@given(numbers=st.lists(money, min_size=1, max_size=20))
def test_sums_of_decimals_are_exact(numbers: list[Decimal]):
    with decimal.localcontext() as context:
        context.prec = 100
        expected = sum(numbers, Decimal(0))
    source = " + ".join(f"({number})" for number in numbers)
    assert compile_expression(source).evaluate({}) == expected
    names = {f"n{i}": number for i, number in enumerate(numbers)}
    via_data = " + ".join(f"data.n{i}" for i in range(len(numbers)))
    assert compile_expression(via_data).evaluate({"data": names}) == expected
    assert compile_expression("sum(data)").evaluate({"data": numbers}) == expected


@settings(max_examples=200, deadline=None)
@given(a=money, b=money, c=st.integers(min_value=-(10**9), max_value=10**9))
def test_products_and_differences_of_decimals_are_exact(a: Decimal, b: Decimal, c: int):
    with decimal.localcontext() as context:
        context.prec = 100
        expected = a * b - c
    assert compile_expression("data.a * data.b - data.c").evaluate({"data": {"a": a, "b": b, "c": c}}) == expected


@settings(max_examples=200, deadline=None)
@given(a=st.integers(min_value=-(10**12), max_value=10**12), b=st.integers(min_value=1, max_value=10**6))
def test_int_division_is_exact_or_a_34_digit_decimal(a: int, b: int):
    result = compile_expression("data.a / data.b").evaluate({"data": {"a": a, "b": b}})
    if a % b == 0:
        assert result == a // b
        assert type(result) is int
    else:
        assert type(result) is Decimal
        assert abs(result - Decimal(a) / Decimal(b)) < Decimal("1e-15")


# -- the singular fast path agrees with the engine ------------------------------------------

ENGINE = jsonpath.JSONPathEnvironment(strict=True)
PATH_KEYS = ["a", "b", "c", "a b", "0", "1", "é", "it's"]
path_documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "a"])),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.sampled_from(PATH_KEYS), children, max_size=5),
        st.dictionaries(st.sampled_from(PATH_KEYS), children, max_size=5).map(MappingProxyType),
    ),
    max_leaves=25,
)


def _segment(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if key.isidentifier() and key.isascii():
        return f".{key}"
    return "['" + key.replace("'", "\\'") + "']"


singular_paths = st.lists(st.one_of(st.sampled_from(PATH_KEYS), st.integers(-4, 4)), max_size=5).map(
    lambda keys: "$" + "".join(_segment(key) for key in keys)
)


@settings(max_examples=300, deadline=None)
@given(source=singular_paths, data=path_documents)
def test_the_singular_fast_path_gives_the_engines_answers(source: str, data: object):
    path = compile_path(source)
    assert path.singular
    expected = [match.obj for match in ENGINE.compile(source).finditer(data)]
    found = path.find(data)
    assert found == expected
    assert all(a is b for a, b in zip(found, expected, strict=True))
    one = path.find_one(data)
    assert one is (expected[0] if expected else NOTHING)


def _descendant(path: str) -> str:
    """``$.a.b`` -> ``$..a.b``: a path that may select several values."""
    if len(path) == 1:
        return "$.*"
    return "$.." + (path[2:] if path[1] == "." else path[1:])


@settings(max_examples=100, deadline=None)
@given(source=singular_paths.map(_descendant), data=path_documents)
def test_general_paths_give_the_engines_answers(source: str, data: object):
    path = compile_path(source)
    assert not path.singular
    assert path.find(data) == [match.obj for match in ENGINE.compile(source).finditer(data)]
