"""What only the SQLite backend has to show: its schema, its files, its projects."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest

from flowbus.config.versions import ConfigVersion
from flowbus.errors import StoreError
from flowbus.events.frozen import freeze
from flowbus.runtime.changes import Changeset, EntityWrite
from flowbus.stores import DatabaseUrlError, open_backend, projects_in
from flowbus.stores.protocols import Manifest
from flowbus.stores.sql_files import load_schema
from flowbus.stores.sqlite import SqliteBackend, _statements, migrate


def schema_of(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' "
        "ORDER BY type, name"
    ).fetchall()
    # SQLite keeps a table's text as written, and ALTER TABLE ADD COLUMN writes ", column" after the
    # last line: spacing around punctuation is not compared
    return [(kind, name, re.sub(r"\s*([,()])\s*", r"\1", " ".join((sql or "").split()))) for kind, name, sql in rows]


def test_the_migrations_produce_exactly_the_schema(tmp_path):
    migrated = sqlite3.connect(tmp_path / "migrated.db", isolation_level=None)
    assert migrate(migrated) == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    assert migrate(migrated) == []  # idempotent
    declared = sqlite3.connect(tmp_path / "declared.db", isolation_level=None)
    for statement in _statements(load_schema("sqlite")):
        declared.execute(statement)
    assert schema_of(migrated) == schema_of(declared)
    assert len(schema_of(migrated)) > 10


async def test_projects_sharing_a_file_never_see_each_other(tmp_path):
    shop = SqliteBackend(tmp_path / "f.db", "shop")
    crm = SqliteBackend(tmp_path / "f.db", "crm")
    await shop.apply(Changeset(writes={("T", "k"): EntityWrite(freeze({"owner": "shop"}), None)}))
    assert await crm.read_entity("T", "k") is None
    assert await crm.entities("T") == {}
    await crm.apply(Changeset(writes={("T", "k"): EntityWrite(freeze({"owner": "crm"}), None)}))
    assert (await shop.read_entity("T", "k")).record == {"owner": "shop"}


async def test_event_instances_cannot_be_updated_even_with_sql_only_removed_whole(tmp_path):
    backend = SqliteBackend(tmp_path / "f.db")
    conn = sqlite3.connect(tmp_path / "f.db")
    conn.execute(
        "INSERT INTO events VALUES ('default', 'e1', 'T', 1, 's', '2026-01-01T00:00:00+00:00', '{}', 'e1', NULL, 0)"
    )
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE events SET type = 'X'")
    assert (await backend.get_event("e1")).type == "T"
    conn.execute("DELETE FROM events")  # retention removes an instance whole, once past its age
    conn.commit()
    assert await backend.get_event("e1") is None


async def test_committed_work_survives_reopening_the_file(tmp_path):
    first = SqliteBackend(tmp_path / "f.db")
    await first.apply(Changeset(writes={("T", "k"): EntityWrite(freeze({"v": 1}), None)}))
    await first.close()
    again = SqliteBackend(tmp_path / "f.db")
    assert (await again.read_entity("T", "k")).record == {"v": 1}


def test_driver_errors_become_store_errors(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="SQLite: unable to open database file"):
        SqliteBackend(tmp_path / "dir.db")


def test_database_urls_pick_a_backend_or_say_what_exists(tmp_path):
    backend = open_backend(f"sqlite:///{tmp_path}/x.db", "p")
    assert isinstance(backend, SqliteBackend) and backend.project == "p"
    with pytest.raises(DatabaseUrlError, match="no backend for 'mysql' URLs; use sqlite:///"):
        open_backend("mysql://x")


async def test_a_database_url_lists_the_projects_with_a_published_config(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    assert projects_in(url) == []  # no file yet
    for project in ("shop", "crm"):
        backend = open_backend(url, project)
        await backend.add_version(ConfigVersion(0, "t", "f.yaml", "h", dt.datetime.now(dt.UTC)), Manifest(0, {}, {}))
        await backend.close()
    assert projects_in(url) == ["crm", "shop"]
    assert projects_in("memory://") == []
    with pytest.raises(DatabaseUrlError, match="no backend for 'mysql' URLs; use sqlite:///"):
        projects_in("mysql://x")


async def test_a_sqlite_url_chooses_its_durability_knowingly(tmp_path):
    async def synchronous(url: str) -> int:
        backend = open_backend(url, "p")
        try:  # a connection's own setting: read on the backend's connection
            return backend.connector._conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            await backend.close()

    normal, full = 1, 2  # SQLite's numbers for the two settings
    assert await synchronous(f"sqlite:///{tmp_path / 'a.db'}") == normal
    assert await synchronous(f"sqlite:///{tmp_path / 'b.db'}?synchronous=full") == full
    assert await synchronous(f"sqlite:///{tmp_path / 'c.db'}?synchronous=NORMAL") == normal
    with pytest.raises(
        DatabaseUrlError, match=r"synchronous='off' in a sqlite URL: use normal \(the default\) or full"
    ):
        open_backend(f"sqlite:///{tmp_path / 'd.db'}?synchronous=off")
    with pytest.raises(DatabaseUrlError, match=r"takes only \?synchronous=normal\|full; not journal"):
        open_backend(f"sqlite:///{tmp_path / 'e.db'}?journal=memory")
