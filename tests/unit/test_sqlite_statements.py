"""SQLite's named queries bound by position: the same rows as sqlite3's own named binding."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowbus.errors import StoreError
from flowbus.stores.sql_files import load_queries
from flowbus.stores.sqlite import SqliteBackend, connect, migrate
from flowbus.stores.sqlite_statements import positional

NAMES = st.sampled_from(["a", "b", "project", "_x1", "Ab"])
#: text that may hold what looks like a parameter, a comment or a quote
TEXT = st.text(alphabet=":ab_-*/'\"`[] \n$?1", max_size=12)


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quoted_name(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


#: one column of a SELECT: a parameter, a string literal or a quoted alias, maybe after a comment
COLUMNS = st.one_of(
    NAMES.map(lambda name: f":{name}"),
    TEXT.map(literal),
    st.tuples(NAMES, TEXT).map(lambda pair: f":{pair[0]} AS {quoted_name(pair[1])}"),
    st.tuples(NAMES, TEXT).map(lambda pair: f":{pair[0]} AS `{pair[1].replace('`', '``')}`"),
    st.tuples(NAMES, TEXT.filter(lambda t: "]" not in t)).map(lambda pair: f":{pair[0]} AS [{pair[1]}]"),
    st.tuples(TEXT.filter(lambda t: "*/" not in t), NAMES).map(lambda pair: f"/*{pair[0]}*/ :{pair[1]}"),
    st.tuples(TEXT.filter(lambda t: "\n" not in t), TEXT).map(lambda pair: f"--{pair[0]}\n{literal(pair[1])}"),
)


@given(st.lists(COLUMNS, min_size=1, max_size=8))
def test_a_query_bound_by_position_reads_what_sqlite_binds_by_name(columns: list[str]) -> None:
    sql = "SELECT " + ", ".join(columns)
    params = {name: f"value of {name}" for name in ["a", "b", "project", "_x1", "Ab", "unused"]}
    statement = positional(sql)
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        by_position = conn.execute(statement.sql, statement.values(params)).fetchall()
        assert by_position == conn.execute(sql, params).fetchall()


def test_a_name_used_twice_is_one_number_in_the_order_names_first_appear() -> None:
    statement = positional("UPDATE t SET a = :b WHERE c = :a AND d = :b AND e = ':z' -- :y")
    assert statement.sql == "UPDATE t SET a = ?1 WHERE c = ?2 AND d = ?1 AND e = ':z' -- :y"
    assert statement.values({"a": 1, "b": 2, "other": 3}) == (2, 1)


@pytest.mark.parametrize(("sql", "values"), [("SELECT 1", ()), ("SELECT :only", ("x",))])
def test_a_query_with_no_parameter_or_one_gives_a_tuple(sql: str, values: tuple[str, ...]) -> None:
    assert positional(sql).values({"only": "x"}) == values


def test_every_query_of_the_sqlite_store_does_by_position_what_it_does_by_name(store: sqlite3.Connection) -> None:
    """Each real query, run on a migrated database with every parameter NULL, once by name (sqlite3's
    own binding) and once by position: the same rows, or the same error."""
    for name, sql in load_queries("sqlite").items():
        if name == "reclaim_space":
            continue  # a script of several statements, without parameters
        statement = positional(sql)
        by_name, by_position = (
            _outcome(store, sql, _AllNone()),
            _outcome(store, statement.sql, statement.values(_AllNone())),
        )
        assert by_position == by_name, name


def test_every_query_of_the_sqlite_store_numbers_its_parameters_as_sqlite_does(store: sqlite3.Connection) -> None:
    """The number SQLite itself gives each named parameter of a real query (its program's
    ``Variable`` steps name them) is the number the positional form binds that name's value to."""
    for name, sql in load_queries("sqlite").items():
        if name == "reclaim_space":
            continue
        program = store.execute(f"EXPLAIN {sql}", _AllNone()).fetchall()
        numbered_by_sqlite = {step[2]: step[5] for step in program if step[1] == "Variable"}
        names_in_order = positional(sql).values(_Names())
        assert numbered_by_sqlite == {n: f":{param}" for n, param in enumerate(names_in_order, start=1)}, name


async def test_a_value_missing_from_the_mapping_is_a_store_error_naming_it(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "store.db", "shop")
    try:
        with pytest.raises(StoreError, match="no value for :project in query read_entity"):
            await backend.connector.fetch_all("read_entity", {"entity": "Order", "key": "o1"})
    finally:
        await backend.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A migrated SQLite store file's connection."""
    conn = connect(tmp_path / "store.db")
    migrate(conn)
    yield conn
    conn.close()


def _outcome(conn: sqlite3.Connection, sql: str, params: Any) -> object:
    """The rows a statement reads, or the kind and text of its error; undone either way."""
    conn.execute("SAVEPOINT q")
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        return type(exc).__name__, str(exc)
    finally:
        conn.execute("ROLLBACK TO q")
        conn.execute("RELEASE q")


class _AllNone(dict[str, None]):
    def __missing__(self, key: str) -> None:
        return None


class _Names(dict[str, str]):
    """Each parameter's value is its name."""

    def __missing__(self, key: str) -> str:
        return key
