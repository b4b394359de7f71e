"""The functions expressions may call: one table, name -> implementation, arity, doc.

Adding a function is one entry in ``_TABLE``. Every function is callable both ways,
``size(x)`` and ``x.size()``: a method call passes its receiver as the first argument.
The implementations live in :mod:`flowbus.expr.library` and
:mod:`flowbus.expr.convert`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from flowbus.expr import convert, library

__all__ = ["FUNCTIONS", "Function", "suggest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Function:
    """One entry of the function table."""

    name: str
    #: Called as ``impl(state, *args)``; for a lazy function, the args are thunks.
    impl: Callable[..., object]
    min_args: int
    #: None: any number of arguments from min_args up.
    max_args: int | None
    #: The signature as the docs show it, e.g. "round(x, places)".
    signature: str
    doc: str
    example: str
    #: Lazy functions get thunks (``thunk(state)``), evaluated on demand, in which a
    #: missing field yields MISSING instead of an error.
    lazy: bool = False


def _entry(
    signature: str,
    impl: Callable[..., object],
    arity: tuple[int, int | None],
    doc: str,
    example: str,
    *,
    lazy: bool = False,
) -> Function:
    return Function(
        name=signature.partition("(")[0],
        impl=impl,
        min_args=arity[0],
        max_args=arity[1],
        signature=signature,
        doc=doc,
        example=example,
        lazy=lazy,
    )


_TABLE: Final = (
    _entry(
        "abs(x)",
        library.abs_,
        (1, 1),
        "Absolute value of a number or duration.",
        "abs(-2.5) == 2.5",
    ),
    _entry(
        "bool(x)",
        convert.to_bool,
        (1, 1),
        "A bool, or 'true'/'false' in any case.",
        "bool('TRUE') == true",
    ),
    _entry(
        "coalesce(a, b, ...)",
        library.coalesce,
        (1, None),
        "The first argument that is not null; a missing field counts as null.",
        "coalesce(null, 'friend') == 'friend'",
        lazy=True,
    ),
    _entry(
        "contains(s, part)",
        library.contains,
        (2, 2),
        "Substring of a string, or element of a list.",
        "'flowbus'.contains('bus')",
    ),
    _entry(
        "date(x)",
        convert.to_date,
        (1, 1),
        "A date from 'YYYY-MM-DD', or the date of a timestamp in its own offset.",
        "date('2024-05-01') + duration('1d') == date('2024-05-02')",
    ),
    _entry(
        "decimal(x)",
        convert.to_decimal,
        (1, 1),
        "A decimal from an int, a decimal or text like '12.50'.",
        "decimal('0.1') + decimal('0.2') == 0.3",
    ),
    _entry(
        "duration(s)",
        convert.parse_duration,
        (1, 1),
        "A duration from text: 90s, 1h30m, 1.5h, 2d, 250ms, -5m.",
        "duration('1h30m') == duration('90m')",
    ),
    _entry(
        "endsWith(s, suffix)",
        library.ends_with,
        (2, 2),
        "Whether a string ends with another.",
        "'report.pdf'.endsWith('.pdf')",
    ),
    _entry(
        "int(x)",
        convert.to_int,
        (1, 1),
        "An int from a decimal (truncated), digits, a timestamp (Unix seconds) or a duration (seconds).",
        "int('42') + int(2.9) == 44",
    ),
    _entry(
        "join(list, sep)",
        library.join,
        (1, 2),
        "The strings of a list joined by a separator (default '').",
        "['a', 'b'].join(', ') == 'a, b'",
    ),
    _entry(
        "lower(s)",
        library.lower,
        (1, 1),
        "The string in lower case.",
        "'ACME'.lower() == 'acme'",
    ),
    _entry(
        "max(a, b, ...) or max(list)",
        library.max_,
        (1, None),
        "The largest of its arguments, or of a list.",
        "max(3, 7, 5) == 7",
    ),
    _entry(
        "min(a, b, ...) or min(list)",
        library.min_,
        (1, None),
        "The smallest of its arguments, or of a list.",
        "min([3, 7, 5]) == 3",
    ),
    _entry(
        "now()",
        library.now,
        (0, 0),
        "The current time, an aware UTC timestamp.",
        "now() > timestamp('2024-01-01T00:00:00Z')",
    ),
    _entry(
        "round(x, places)",
        library.round_,
        (1, 2),
        "A number rounded half away from zero; to an int without places, to a decimal with places.",
        "round(2.345, 2) == 2.35",
    ),
    _entry(
        "size(x)",
        library.size,
        (1, 1),
        "Characters of a string, items of a list, entries of a map.",
        "size('héllo') == 5",
    ),
    _entry(
        "split(s, sep)",
        library.split,
        (2, 2),
        "A string cut at each separator ('' cuts into characters).",
        "'a,b,c'.split(',') == ['a', 'b', 'c']",
    ),
    _entry(
        "startsWith(s, prefix)",
        library.starts_with,
        (2, 2),
        "Whether a string starts with another.",
        "'INV-001'.startsWith('INV-')",
    ),
    _entry(
        "string(x)",
        convert.to_string,
        (1, 1),
        "The text of any value; lists and maps as JSON.",
        "string(1.50) == '1.50'",
    ),
    _entry(
        "sum(list)",
        library.sum_,
        (1, 1),
        "The sum of a list of numbers (0 when empty).",
        "sum([1, 2.5]) == 3.5",
    ),
    _entry(
        "timestamp(x)",
        convert.to_timestamp,
        (1, 1),
        "A timestamp from ISO 8601 text with a time zone, a date, or Unix seconds.",
        "timestamp('2024-05-01T09:30:00+02:00') == timestamp('2024-05-01T07:30:00Z')",
    ),
    _entry(
        "today()",
        library.today,
        (0, 0),
        "The current date in UTC.",
        "today() >= date('2024-01-01')",
    ),
    _entry(
        "trim(s)",
        library.trim,
        (1, 1),
        "The string without leading and trailing whitespace.",
        "'  hi '.trim() == 'hi'",
    ),
    _entry(
        "type(x)",
        library.type_of,
        (1, 1),
        "The type name of a value: int, decimal, string, bool, null, list, map, timestamp, date or duration.",
        "type(1.5) == 'decimal'",
    ),
    _entry(
        "upper(s)",
        library.upper,
        (1, 1),
        "The string in upper case.",
        "'acme'.upper() == 'ACME'",
    ),
    _entry(
        "uuid()",
        library.new_uuid,
        (0, 0),
        "A new random UUID (version 4) as a string.",
        "size(uuid()) == 36",
    ),
)

#: Every function by name.
FUNCTIONS: Final[Mapping[str, Function]] = {entry.name: entry for entry in _TABLE}

# Names people bring from other languages, and ours.
_ALIASES: Final = {
    "len": "size", "length": "size", "count": "size", "str": "string", "float": "decimal",
    "number": "decimal", "toLowerCase": "lower", "toUpperCase": "upper", "lowercase": "lower",
    "uppercase": "upper", "strip": "trim", "ifnull": "coalesce", "nvl": "coalesce",
    "includes": "contains", "uuid4": "uuid", "datetime": "timestamp", "timedelta": "duration",
    "starts_with": "startsWith", "ends_with": "endsWith", "exists": "has", "defined": "has",
    "typeof": "type", "ceil": "round", "floor": "round", "concat": "join",
}  # fmt: skip


def suggest(name: str) -> str:
    """The hint for an unknown function: the nearest names, or all of them."""
    known = [*FUNCTIONS, "has"]
    candidates = {**{n: n for n in known}, **_ALIASES}
    by_case = {candidate.lower(): target for candidate, target in candidates.items()}
    matches = []
    if name.lower() in by_case:
        matches.append(by_case[name.lower()])
    for candidate in difflib.get_close_matches(name, list(candidates), n=4, cutoff=0.75):
        matches.append(candidates[candidate])
    unique = list(dict.fromkeys(matches))
    if unique:
        return "did you mean: " + ", ".join(unique[:3]) + "?"
    return "known functions: " + ", ".join(sorted(known))
