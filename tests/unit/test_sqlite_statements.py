"""SQLite's named queries bound by position: the same rows as sqlite3's own named binding."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowbus.stores.sql_files import load_queries
from flowbus.stores.sqlite import connect, migrate
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
    conn = sqlite3.connect(":memory:")
    statement = positional(sql)
    assert conn.execute(statement.sql, statement.values(params)).fetchall() == conn.execute(sql, params).fetchall()


def test_a_name_used_twice_is_one_number_in_the_order_names_first_appear() -> None:
    statement = positional("UPDATE t SET a = :b WHERE c = :a AND d = :b AND e = ':z' -- :y")
    assert statement.sql == "UPDATE t SET a = ?1 WHERE c = ?2 AND d = ?1 AND e = ':z' -- :y"
    assert statement.values({"a": 1, "b": 2, "other": 3}) == (2, 1)


@pytest.mark.parametrize(("sql", "values"), [("SELECT 1", ()), ("SELECT :only", ("x",))])
def test_a_query_with_no_parameter_or_one_gives_a_tuple(sql: str, values: tuple[str, ...]) -> None:
    assert positional(sql).values({"only": "x"}) == values


def test_every_query_of_the_sqlite_store_binds_as_many_values_as_it_has_parameters(tmp_path: Path) -> None:
    """Each real query, run on a migrated database with every parameter NULL: SQLite may refuse a
    NULL, but never the number of values bound."""
    conn = connect(tmp_path / "store.db")
    migrate(conn)
    for name, sql in load_queries("sqlite").items():
        statement = positional(sql)
        params = _AllNone()
        conn.execute("SAVEPOINT q")
        try:
            if name == "reclaim_space":
                continue  # a script of several statements, without parameters
            conn.execute(statement.sql, statement.values(params))
        except sqlite3.ProgrammingError as exc:  # the number of bindings: what this test is about
            pytest.fail(f"{name}: {exc}")
        except sqlite3.Error:
            pass  # a NULL where the query wants a value
        finally:
            conn.execute("ROLLBACK TO q")
            conn.execute("RELEASE q")


class _AllNone(dict[str, None]):
    def __missing__(self, key: str) -> None:
        return None
