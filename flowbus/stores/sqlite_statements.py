"""SQLite's named queries, bound by position.

The queries of ``sql/sqlite/queries.sql`` name their parameters (``:project``), as PostgreSQL's
do, and are called with a mapping. sqlite3 binds a named parameter by making a string of its
name and looking that up in the mapping, for every parameter of every row; for a run record's 17
columns that took nearly as long as SQLite's insert of the row. So each query is turned once, when it
is loaded, into the same text with numbered parameters (``?1``, ``?2``; a name used twice is one
number), with a getter that takes the values out of the mapping in that order, in C.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

#: what may hold a colon that is not a parameter (a string literal, a name quoted in any of
#: SQLite's three ways, a comment) is matched first and kept as it is; a parameter is a colon and a
#: name outside of them
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/|:([A-Za-z_]\w*)""", re.DOTALL
)

Values = Callable[[Mapping[str, Any]], tuple[Any, ...]]


class Statement(NamedTuple):
    """A query with numbered parameters, and what takes its parameters' values out of a mapping."""

    sql: str
    values: Values


def positional(sql: str) -> Statement:
    """``sql`` with its ``:name`` parameters numbered in the order they first appear."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # a literal or a comment
            return match.group(0)
        return f"?{numbers.setdefault(name, len(numbers) + 1)}"

    return Statement(_TOKENS.sub(number, sql), _getter(tuple(numbers)))


def positional_queries(queries: Mapping[str, str]) -> dict[str, Statement]:
    return {name: positional(sql) for name, sql in queries.items()}


def _getter(names: tuple[str, ...]) -> Values:
    if not names:
        return _no_values
    if len(names) == 1:  # itemgetter of one name returns the value, not a tuple of it
        [name] = names
        return lambda params: (params[name],)
    getter: Values = operator.itemgetter(*names)
    return getter


def _no_values(params: Mapping[str, Any]) -> tuple[Any, ...]:
    return ()
