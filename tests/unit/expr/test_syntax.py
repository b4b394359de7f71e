"""Reading expression text: literals, escapes, precedence, and the syntax errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flowbus.expr import ExpressionSyntaxError, compile_expression


def ev(source: str, **variables: object) -> object:
    return compile_expression(source).evaluate(variables)


def syntax_error(source: str, **options: object) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression(source, **options)  # type: ignore[arg-type]
    return caught.value


# -- literals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("42", 42),
        ("0", 0),
        ("0x1F", 31),
        ("007", 7),
        ("-3", -3),
        ("true", True),
        ("false", False),
        ("null", None),
        ("'single'", "single"),
        ('"double"', "double"),
        ("''", ""),
        ("[1, 'a', null]", [1, "a", None]),
        ("[1, 2,]", [1, 2]),
        ("[]", []),
        ("{'a': 1, 2: 'b'}", {"a": 1, 2: "b"}),
        ("{'a': 1,}", {"a": 1}),
        ("{}", {}),
    ],
)
def test_literals_evaluate_to_their_values(source: str, expected: object):
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [("1.5", Decimal("1.5")), ("1e3", Decimal("1E+3")), ("2.50", Decimal("2.50")), ("1.5e-2", Decimal("0.015"))],
)
def test_every_non_integer_number_literal_is_a_decimal(source: str, expected: Decimal):
    result = ev(source)
    assert type(result) is Decimal
    assert str(result) == str(expected)


def test_a_negative_decimal_literal_stays_exact():
    assert ev("-0.1") == Decimal("-0.1")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (r"'a\nb'", "a\nb"),
        (r"'a\tb'", "a\tb"),
        (r"'a\\b'", "a\\b"),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'\u00e9'", "é"),
        (r"'\ud83d\ude00'", "\U0001f600"),
        (r"'\U0001F600'", "\U0001f600"),
        (r"'\x41'", "A"),
        (r"'\r\b\f\v\0\/\`'", "\r\b\f\v\0/`"),
        ("'\"'", '"'),
        ('"\'"', "'"),
    ],
)
def test_string_escapes_are_decoded(source: str, expected: str):
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (r"'\q'", "unknown escape '\\q'"),
        (r"'\u12'", "'\\u' needs 4 hex digits"),
        (r"'\ud800'", "'\\ud800' is not a character"),
        ("'open", "unterminated string"),
        ("'line\nbreak'", "unterminated string"),
        ("1.0000000000000000000000000000000000001", "has more than 34 significant digits"),
        ("12abc", "unexpected 'a' after a number"),
        ("#", "unexpected character '#'"),
        ("é", "unexpected character 'é'"),
    ],
)
def test_bad_literals_are_syntax_errors(source: str, reason: str):
    assert reason in syntax_error(source).reason


# -- precedence ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 * 3 % 4", 2),
        ("-2 * 3", -6),
        ("!true || true", True),
        ("true || false && false", True),
        ("1 + 1 == 2 && 3 > 2", True),
        ("1 < 2 == true", True),
        ("true ? 1 : 2 + 10", 1),
        ("false ? 1 : true ? 2 : 3", 2),
        ("true ? false ? 1 : 2 : 3", 2),
        ("1 in [1] && 2 in [2]", True),
        ("-[1, 2][0]", -1),
        ("'ab'.size() * 2", 4),
        ("!!true", True),
        ("- -1", 1),
    ],
)
def test_operators_bind_as_in_cel(source: str, expected: object):
    assert ev(source) == expected


def test_whitespace_and_newlines_are_ignored_between_tokens():
    assert ev(" 1 +\n\t2 ") == 3


def test_keywords_may_be_field_names_after_a_dot():
    assert ev("data.in + data.null", data={"in": 1, "null": 2}) == 3


# -- syntax errors -------------------------------------------------------------------------


def test_a_syntax_error_names_the_column_and_draws_a_caret():
    error = syntax_error("data.a + )")
    assert str(error) == "unexpected ')' at column 10\n  data.a + )\n           ^"


def test_a_lone_equals_sign_suggests_double_equals():
    error = syntax_error("a = 1")
    assert error.column == 3
    assert str(error).startswith("unexpected '=' at column 3; use '==' to compare")


def test_a_leading_equals_sign_is_explained():
    assert "without the leading '='" in str(syntax_error("=data.a"))


@pytest.mark.parametrize(("source", "hint"), [("a & b", "use '&&'"), ("a | b", "use '||'"), ("a and b", "use '&&'")])
def test_operators_from_other_languages_get_a_hint(source: str, hint: str):
    assert hint in str(syntax_error(source))


def test_an_unclosed_bracket_names_its_opener():
    error = syntax_error("(1 + 2")
    assert "unexpected end of expression at column 7" in str(error)
    assert "expected ')' to close the '(' at column 1" in str(error)


def test_a_missing_colon_names_its_question_mark():
    assert "expected ':' to go with the '?' at column 6" in str(syntax_error("true ? 1"))


def test_two_values_in_a_row_suggest_a_missing_operator():
    assert "an operator is missing before it" in str(syntax_error("1 2"))


def test_a_field_name_must_follow_a_dot():
    assert "a field name must follow '.'" in str(syntax_error("data.1"))


def test_an_empty_expression_is_a_syntax_error():
    assert syntax_error("").reason == "unexpected end of expression"


def test_has_needs_a_field():
    assert "has() takes one field" in str(syntax_error("has(1)"))
    assert "has() takes one field" in str(syntax_error("has(a.b, a.c)"))


def test_an_error_in_a_long_line_shows_a_window_around_the_caret():
    source = "data.a + " * 20 + ")"
    error = syntax_error(source)
    excerpt, caret = str(error).splitlines()[1:]
    assert excerpt.startswith("  ...")
    assert len(excerpt) < 90
    assert excerpt[caret.index("^")] == ")"


def test_an_error_in_a_multi_line_source_shows_its_own_line():
    error = syntax_error("1 +\n  )")
    assert error.column == 7
    assert str(error).splitlines()[1:] == ["    )", "    ^"]


def test_unknown_variables_are_refused_at_compile_time_when_variables_are_given():
    error = syntax_error("dta.total", variables=["data", "event", "inputs"])
    assert error.column == 1
    assert str(error).startswith(
        "unknown variable 'dta' at column 1; did you mean: data? the variables are: data, event, inputs"
    )


def test_python_literals_suggest_their_spelling_here():
    assert "did you mean: null?" in str(syntax_error("None", variables=["data"]))


def test_known_variables_compile():
    assert compile_expression("data.a", variables={"data"}).variables == frozenset({"data"})


def test_a_value_where_an_operator_belongs_is_named():
    assert syntax_error("1 'a'").reason == "unexpected string"
    assert syntax_error("(1 2)").reason == "unexpected number"


def test_a_high_surrogate_needs_its_low_half():
    assert "is not a character" in syntax_error(r"'\ud83d\u0041'").reason
    assert "is not a character" in syntax_error(r"'\ud83dx'").reason
