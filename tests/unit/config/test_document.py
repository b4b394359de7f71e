from __future__ import annotations

import re
from decimal import Decimal

import pytest

from flowbus.config.document import MAX_NODES, parse_text
from flowbus.config.issues import ConfigError


def test_every_field_knows_its_line():
    doc = parse_text("flows:\n  - name: a\n    steps:\n      - id: x\n", file="f.yaml")
    assert doc.line_of(("flows", 0, "name")) == 2
    assert doc.line_of(("flows", 0, "steps", 0, "id")) == 4


def test_a_missing_field_reports_the_line_of_its_parent():
    doc = parse_text("flows:\n  - name: a\n", file="f.yaml")
    assert doc.line_of(("flows", 0, "steps")) == 2


def test_numbers_with_fractions_are_decimals_never_floats():
    doc = parse_text("price: 0.1\ncount: 3\nbig: 1_000.50\n")
    assert doc.data == {"price": Decimal("0.1"), "count": 3, "big": Decimal("1000.50")}


def test_json_files_parse_with_lines_too():
    doc = parse_text('{\n  "flows": [\n    {"name": "a"}\n  ]\n}', file="f.json")
    assert doc.data == {"flows": [{"name": "a"}]}
    assert doc.line_of(("flows", 0, "name")) == 3


def test_duplicate_keys_are_an_error_at_their_line():
    with pytest.raises(ConfigError) as info:
        parse_text("a: 1\nb: 2\na: 3\n", file="f.yaml")
    assert str(info.value) == "f.yaml:3: duplicate key 'a'"


def test_invalid_yaml_names_the_line():
    with pytest.raises(ConfigError) as info:
        parse_text("a: [1, 2\nb: 3\n", file="f.yaml")
    assert str(info.value).startswith("f.yaml:")
    assert "not valid YAML/JSON" in str(info.value)


def test_an_empty_file_is_an_error():
    with pytest.raises(ConfigError, match="the file is empty"):
        parse_text("", file="f.yaml")


def test_alias_bombs_are_refused_before_they_expand():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghij":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} values"):
        parse_text(bomb)


def test_nesting_is_bounded():
    with pytest.raises(ConfigError, match="nests deeper than 64"):
        parse_text("a: " + "[" * 100 + "]" * 100)


def test_merge_keys_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="merge keys"):
        parse_text("base: &b {x: 1}\nother:\n  <<: *b\n")


def test_non_string_keys_are_refused():
    with pytest.raises(ConfigError, match="mapping keys must be strings"):
        parse_text("1: a\n")


def test_oversized_files_are_refused(monkeypatch):
    import flowbus.config.document as document

    monkeypatch.setattr(document, "MAX_FILE_BYTES", 10)
    with pytest.raises(ConfigError, match="the limit is 10"):
        parse_text("a: 123456789012\n")


def test_exponent_numbers_are_numbers_as_in_json():
    doc = parse_text("a: 1e3\nb: -2.5E-2\nc: '1e3'\n")
    assert doc.data == {"a": Decimal("1E+3"), "b": Decimal("-0.025"), "c": "1e3"}


def test_json_files_follow_the_json_grammar():
    doc = parse_text('{"url": "a\\/b", "n": 1e2}', file="f.json")
    assert doc.data == {"url": "a/b", "n": Decimal("1E+2")}


def test_json_errors_name_the_line_and_column():
    with pytest.raises(ConfigError) as info:
        parse_text('{\n  "a": [1,\n}', file="f.json")
    assert str(info.value) == "f.json:3: not valid JSON: Expecting value (column 1)"


def test_yes_no_on_off_stay_strings():
    assert parse_text("a: on\nb: NO\nc: true\n").data == {"a": "on", "b": "NO", "c": True}


def test_language_specific_tags_are_refused():
    with pytest.raises(
        ConfigError,
        match=re.escape("f.yaml:1: the YAML tag 'tag:yaml.org,2002:python/object:os.system' is not supported"),
    ):
        parse_text("a: !!python/object:os.system {}\n", file="f.yaml")


def test_text_that_is_not_utf8_is_refused_with_its_line():
    with pytest.raises(ConfigError, match=re.escape("f.yaml:2: not UTF-8 text")):
        parse_text(b"a: 1\nb: \xff\n", file="f.yaml")


def test_a_json_file_nested_past_the_recursion_limit_says_it_nests_too_deep():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ConfigError) as caught:
        parse_text(deep, file="deep.json")
    assert str(caught.value) == "deep.json:1: the config nests deeper than 64 levels"


@pytest.mark.parametrize(
    ("file", "text", "line"),
    [
        ("big.yaml", "project: {name: big}\nlimit: " + "9" * 5000 + "\n", 2),
        ("big.json", '{"project": {"name": "big"},\n "limit": -' + "9" * 5000 + "}", 1),
    ],
)
def test_an_integer_of_more_digits_than_python_converts_is_refused_in_flowbus_words(file, text, line):
    # Python would refuse it itself, with "use sys.set_int_max_str_digits()", or fail the request
    with pytest.raises(ConfigError) as caught:
        parse_text(text, file=file)
    assert str(caught.value).startswith(f"{file}:{line}: ")
    assert str(caught.value).endswith("a number of 5,000 digits; the limit is 4,300")


def test_an_integer_of_the_most_digits_allowed_is_read():
    assert parse_text("limit: " + "9" * 4300 + "\n").data == {"limit": int("9" * 4300)}
