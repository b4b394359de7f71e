from __future__ import annotations

import pytest

from flowbus.stores.memory import MemoryBackend
from flowbus.stores.sqlite import SqliteBackend

BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
async def backend(request, tmp_path):
    """Each backend in turn; only the one a test runs on is opened."""
    if request.param == "memory":
        store = MemoryBackend("shop", dedup_window_s=0.5)
    elif request.param == "sqlite":
        store = SqliteBackend(tmp_path / "flowbus.db", "shop", dedup_window_s=0.5)
    else:
        from flowbus.stores.postgres import PostgresBackend

        store = PostgresBackend(request.getfixturevalue("postgres_url"), "shop", dedup_window_s=0.5)
    yield store
    await store.close()
