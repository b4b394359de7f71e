from __future__ import annotations

import contextlib

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


@pytest.fixture
def serve_api(tmp_path):
    """The whole HTTP API over a SQLite store in ``tmp_path``: ``serve_api(project, *configs, scopes=...)``
    publishes each config in turn, adds a key of ``scopes``, and yields ``(client, auth headers, store)``."""

    @contextlib.asynccontextmanager
    async def serve(project: str, *configs: str, scopes=None):
        import httpx

        from flowbus.api import create_app
        from flowbus.keys import Scope, new_key
        from flowbus.publishing import publish_config

        db = tmp_path / "flowbus.db"
        store = SqliteBackend(db, project)
        for config in configs:
            await publish_config(store, config, file="flowbus.yaml")
        key, token = new_key(project, "tests", tuple(scopes or (Scope.INGEST,)))
        await store.add_key(key)
        app = create_app(f"sqlite:///{db}")
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://f") as client,
        ):
            yield client, {"Authorization": f"Bearer {token}"}, store
        await store.close()

    return serve
