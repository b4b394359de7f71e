"""Runtime errors that teach: which field, in which object, what was there instead."""

from __future__ import annotations

import decimal
from collections import OrderedDict
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

import pytest

from flowbus.expr import ExpressionRuntimeError, compile_expression

ORDER = {"order": {"id": 7, "total": Decimal("12.50"), "lines": [{"sku": "A"}, {"sku": "B"}]}}


def ev(source: str, **variables: object) -> object:
    return compile_expression(source).evaluate(variables)


def runtime_error(source: str, **variables: object) -> ExpressionRuntimeError:
    with pytest.raises(ExpressionRuntimeError) as caught:
        ev(source, **variables)
    return caught.value


def test_a_missing_field_names_the_object_and_what_it_has():
    error = runtime_error("data.order.totl * 2", data=ORDER)
    assert error.reason == "no field 'totl' in data.order; it has: id, lines, total"
    assert error.column == 12
    assert str(error) == (
        "no field 'totl' in data.order; it has: id, lines, total\n  data.order.totl * 2\n             ^"
    )


def test_a_missing_field_lists_only_the_first_ten_names():
    data = {f"k{n:02}": n for n in range(25)}
    error = runtime_error("data.nope", data=data)
    assert (
        error.reason == "no field 'nope' in data; it has: k00, k01, k02, k03, k04, k05, k06, k07, k08, k09 and 15 more"
    )


def test_a_missing_field_of_an_empty_map_says_so():
    assert runtime_error("data.x", data={}).reason == "no field 'x' in data; it is an empty map"


def test_a_missing_field_after_an_index_names_the_indexed_text():
    error = runtime_error("data.order.lines[1].qty", data=ORDER)
    assert error.reason == "no field 'qty' in data.order.lines[1]; it has: sku"


def test_a_missing_field_of_a_computed_value_names_its_text():
    error = runtime_error("{'a': 1}.b")
    assert error.reason == "no field 'b' in {'a': 1}; it has: a"


def test_a_missing_key_names_the_key():
    assert runtime_error("data['the key']", data={"a": 1}).reason == "no key 'the key' in data; it has: a"
    assert runtime_error("data[3]", data={1: "x"}).reason == "no key 3 in data; it has: 1"


def test_an_index_out_of_range_names_the_index_and_the_length():
    error = runtime_error("data.order.lines[5].sku", data=ORDER)
    assert error.reason == "index 5 is out of range for data.order.lines, a list of 2 items"
    assert error.column == 17
    assert (
        runtime_error("data.l[-2]", data={"l": [1]}).reason == "index -2 is out of range for data.l, a list of 1 item"
    )


def test_a_computed_index_out_of_range_names_it_too():
    assert runtime_error("data.l[data.i]", data={"l": [], "i": 0}).reason == (
        "index 0 is out of range for data.l, a list of 0 items"
    )


def test_negative_indexes_count_from_the_end():
    assert ev("data.l[-1]", data={"l": [1, 2, 3]}) == 3


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("data.name.first", "data.name is a string, so it has no field 'first'"),
        ("data.none.first", "data.none is null, so it has no field 'first'"),
        ("data.n.x", "data.n is an int, so it has no field 'x'"),
        ("data.l.x", "data.l is a list, so it has no field 'x'; pick an item first, like data.l[0].x"),
        ("data.name[0]", "data.name is a string; only lists and maps can be indexed with [...]"),
        ("data.l['a']", "a list index must be an int, not string"),
        ("data.l[1.0]", "a list index must be an int, not decimal"),
        ("data.l[true]", "a list index must be an int, not bool"),
        ("data[[1]]", "a map key must be a string or an int, not list"),
        ("{[1]: 2}", "a map key must be a string or an int, not list"),
        ("{'a': 1, 'a': 2}", "the key 'a' appears twice in this map"),
    ],
)
def test_reading_the_wrong_kind_of_value_says_what_it_is(source: str, reason: str):
    assert runtime_error(source, data={"name": "Ada", "none": None, "n": 1, "l": [1]}).reason == reason


def test_an_unset_variable_lists_the_variables():
    error = runtime_error("dta.x", data={}, inputs={})
    assert error.reason == "no variable 'dta'; the variables are: data, inputs"
    assert error.column == 1


def test_an_unsupported_python_value_is_refused_by_its_type_name():
    error = runtime_error("data.thing", data={"thing": object()})
    assert error.reason.startswith("unsupported value of Python type 'object'")
    assert error.column == 6


def test_an_unsupported_value_inside_a_list_is_refused_when_it_is_used():
    assert "unsupported value of Python type 'bytes'" in runtime_error("data.l == [1]", data={"l": [b"x"]}).reason


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")])
def test_a_number_that_is_not_finite_is_refused(value: object):
    assert "not a finite number" in runtime_error("data.x + 1", data={"x": value}).reason


def test_a_naive_timestamp_is_refused():
    assert "has no time zone" in runtime_error("data.t", data={"t": datetime(2024, 1, 1)}).reason


def test_other_mappings_and_tuples_are_read_like_dicts_and_lists():
    data = MappingProxyType({"m": OrderedDict(a=(1, 2)), "t": (MappingProxyType({"k": "v"}),)})
    assert ev("data.m.a[1] + size(data.t)", data=data) == 3
    assert ev("data.t[0].k", data=data) == "v"
    assert ev("data.m == {'a': [1, 2]}", data=data) is True


def test_subclasses_of_plain_types_are_read_as_their_base_type():
    class Name(str):
        pass

    class Count(int):
        pass

    result = ev("data.name + data.count.string()", data={"name": Name("x"), "count": Count(3)})
    assert result == "x3"
    assert type(result) is str


def test_no_python_attribute_is_ever_read():
    class Spy(dict[str, object]):
        def __getattribute__(self, name: str) -> object:
            if not name.startswith("__"):
                raise AssertionError(f"read attribute {name}")
            return super().__getattribute__(name)

    assert ev("data.keys", data={"keys": 1}) == 1
    assert ev("data.get.x", data={"get": {"x": 2}}) == 2
    assert ev("data.items", data=Spy(items=3)) == 3


def test_a_runtime_error_in_a_nested_call_points_at_the_innermost_failure():
    error = runtime_error("size(data.a.b)", data={"a": {}})
    assert error.column == 13
    assert error.reason == "no field 'b' in data.a; it is an empty map"


def test_errors_do_not_depend_on_the_current_decimal_context():
    with decimal.localcontext() as context:
        context.prec = 3
        context.traps[decimal.Inexact] = True
        assert ev("1 / 3 + 1.23456") == Decimal("1.567893333333333333333333333333333")


def test_fields_and_items_of_computed_values_are_read_too():
    assert ev("{'a': 1}.a") == 1
    assert ev("[{'a': 2}][0].a") == 2
    assert ev("[[1, 2]][0][-1]") == 2
    assert ev("{'k': [0.5]}['k'][0]") == Decimal("0.5")


def test_an_unsupported_value_on_the_way_is_refused_where_it_was_read():
    error = runtime_error("data.thing.x", data={"thing": object()})
    assert error.reason.startswith("unsupported value of Python type 'object'")
    assert error.column == 6


def test_a_decimal_subclass_is_a_decimal():
    class Money(Decimal):
        pass

    data = {"price": Money("9.50")}
    assert ev("data.price * 2", data=data) == Decimal("19.00")
    assert ev("data.price + data.price", data=data) == Decimal("19.00")
    assert ev("-data.price", data=data) == Decimal("-9.50")
    assert ev("type(data.price)", data=data) == "decimal"


def test_a_duration_out_of_range_is_a_runtime_error():
    from datetime import timedelta

    assert "out of range" in runtime_error("-data.d", data={"d": timedelta.max}).reason
    assert "out of range" in runtime_error("data.d * 1000000000000", data={"d": timedelta(days=1)}).reason
