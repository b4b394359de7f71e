"""What only the PostgreSQL backend has to show: its schema and its error boundary."""

from __future__ import annotations

import asyncio

import pytest

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")

from flowbus.errors import StoreError  # noqa: E402
from flowbus.stores import open_backend  # noqa: E402
from flowbus.stores.postgres import PostgresBackend, migrate  # noqa: E402
from flowbus.stores.sql_files import load_schema  # noqa: E402

SCHEMA_QUERY = """
SELECT 'table' AS kind, table_name AS name, column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '') AS detail
FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
UNION ALL
SELECT 'trigger', trigger_name, event_object_table || ' ' || event_manipulation || ' ' || action_statement
FROM information_schema.triggers WHERE trigger_schema = 'public'
ORDER BY 1, 2, 3
"""


def test_the_migrations_produce_exactly_the_schema(postgres_template, postgres_url):
    admin, _ = postgres_template
    declared = postgres_url.rpartition("/")[0] + "/flowbus_declared_schema"
    admin.execute('DROP DATABASE IF EXISTS "flowbus_declared_schema" WITH (FORCE)')
    admin.execute('CREATE DATABASE "flowbus_declared_schema"')
    try:
        with psycopg.connect(declared, autocommit=True) as conn:
            conn.execute(load_schema("postgres"))
            expected = conn.execute(SCHEMA_QUERY).fetchall()

        async def migrated() -> list[tuple[str, str, str]]:
            conn = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
            assert await migrate(conn) == []  # the template is migrated already: nothing left to do
            rows = await (await conn.execute(SCHEMA_QUERY)).fetchall()
            await conn.close()
            return rows

        assert asyncio.run(migrated()) == expected
        assert len(expected) > 60
    finally:
        admin.execute('DROP DATABASE IF EXISTS "flowbus_declared_schema" WITH (FORCE)')


async def test_driver_errors_become_store_errors():
    backend = PostgresBackend("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(StoreError, match="PostgreSQL: "):
        await backend.read_entity("T", "k")


async def test_event_instances_cannot_be_updated_even_with_sql_only_removed_whole(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO events VALUES ('p', 'e1', 'T', 1, 's', now(), '{}', 'e1', NULL, 0)")
        with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
            conn.execute("UPDATE events SET type = 'X'")
        conn.execute("DELETE FROM events")  # retention removes an instance whole, once past its age
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_postgresql_urls_open_the_postgres_backend():
    backend = open_backend("postgresql://postgres@127.0.0.1/flowbus", "shop")
    assert isinstance(backend, PostgresBackend) and backend.project == "shop"


async def test_new_work_and_new_versions_are_announced_to_waiting_workers(postgres_url):
    import asyncio

    from flowbus.queue import MessageKind, OutgoingMessage, QueueName

    listener = PostgresBackend(postgres_url, "shop")
    other_project = PostgresBackend(postgres_url, "crm")
    sender = PostgresBackend(postgres_url, "shop")
    await listener.wait_for_work(0.01)  # LISTEN is in place from here on

    waiting = asyncio.create_task(listener.wait_for_work(60))
    await other_project.send([OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"source": "s"})])
    await sender.send([OutgoingMessage(QueueName.INBOUND, MessageKind.SOURCE, {"source": "s"})])
    # a timeout would give None after a minute; "work" means the commit was announced
    assert await asyncio.wait_for(waiting, 30) == "work"

    import datetime as dt

    from flowbus.config.versions import ConfigVersion
    from flowbus.stores.protocols import Manifest

    waiting = asyncio.create_task(listener.wait_for_work(60))
    version = ConfigVersion(0, "flows: []", "f.yaml", "h", dt.datetime.now(dt.UTC))
    await sender.add_version(version, Manifest(0, {}, {}))
    await sender.project_versions()
    assert await asyncio.wait_for(waiting, 30) == "version"
    for backend in (listener, other_project, sender):
        await backend.close()
