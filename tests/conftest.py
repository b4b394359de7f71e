from __future__ import annotations

import asyncio
import concurrent.futures
import os
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def write_config(tmp_path: Path):
    """Write config text to a file and return its path."""

    def write(text: str, name: str = "flowbus.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


#: a server database to connect to for creating and dropping test databases
POSTGRES_URL = os.environ.get("FLOWBUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _database_url(name: str) -> str:
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_template():
    """A migrated template database, built once per test session; each test gets a copy."""
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # no driver, no server: say which
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs a PostgreSQL server at {POSTGRES_URL}: {exc}")
        pytest.skip(f"no PostgreSQL server at {POSTGRES_URL} (set FLOWBUS_TEST_POSTGRES): {exc}")
    from flowbus.stores.postgres import migrate

    template = f"flowbus_template_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{template}"')

    async def prepare() -> None:
        conn = await psycopg.AsyncConnection.connect(_database_url(template), autocommit=True)
        await migrate(conn)
        await conn.close()

    # the session fixture may be set up from inside a running event loop: migrate on a thread of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, prepare()).result()
    yield admin, template
    admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def postgres_url(postgres_template):
    """A fresh database cloned from the template (fast: a file copy on the server)."""
    admin, template = postgres_template
    name = f"flowbus_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _database_url(name)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def http_server() -> Iterator[Callable[..., str]]:
    """``start(handler)``: a real HTTP server of that request handler class on a free port, in a
    thread of its own, and its base URL (``tls=``: an SSL server context, for HTTPS). Every server
    started is shut down after the test."""
    started: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()
