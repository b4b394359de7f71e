"""Ingest throughput of the source endpoint under a loopback load generator, beside a bare ASGI
app answering 202 measured the same way in the same run (read the ratio).

    python benchmarks/bench_ingest.py [--seconds 5] [--connections 32] [--postgres URL]
    python benchmarks/bench_ingest.py --while-draining 50000 [--rate 1000] [--seconds 5]

On SQLite by default; ``--postgres postgresql://postgres@127.0.0.1/postgres`` runs flowbus on a
scratch database of that server instead (created and dropped here).

``--while-draining N`` measures latency instead of throughput: ``flowbus run`` (API and worker in
one process) takes ingest at a steady ``--rate``, first with an idle worker, then while its
worker drains a backlog of N queued messages; it prints p50 and p99 of each, and how fast the
worker drained meanwhile.

Both servers run in a uvicorn subprocess; the load comes from this process (a minimal
keep-alive HTTP/1.1 client), so the client's own cost is in both figures alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from flowbus.publishing import active_config
from flowbus.queue import source_message
from flowbus.stores import open_backend

BARE = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"18")]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"message_id":"x"}'})
"""

FLOWBUS = """
import os
from flowbus.api import create_app
app = create_app(os.environ["FLOWBUS_DB"])
"""

COMPASS = Path(__file__).resolve().parents[1] / "examples" / "compass" / "flowbus.yaml"
PAYLOAD = b'{"event": "upsert_company", "payload": {"domain": "acme.example", "name": "Acme"}}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(module_dir: Path, module: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port), "--log-level", "warning",
         "--app-dir", str(module_dir)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_listening(port)
    return process


def post(path: str, headers: dict[str, str]) -> bytes:
    """The bytes of one ingest request."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(PAYLOAD)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode() + b"\r\n" + PAYLOAD


async def answer(reader: asyncio.StreamReader) -> bytes:
    """Read one response; returns its status line."""
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status_line


async def load(port: int, path: str, headers: dict[str, str], seconds: float, connections: int) -> tuple[int, int]:
    """Requests completed and how many were not 202, over ``seconds`` with ``connections`` clients.

    A minimal keep-alive HTTP/1.1 client on asyncio streams: much lighter than a full client
    library, so that the servers, not the load generator, are what is measured.
    """
    request = post(path, headers)
    done = failed = 0
    stop = time.monotonic() + seconds

    async def one_client() -> None:
        nonlocal done, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            writer.write(request)
            status_line = await answer(reader)
            done += 1
            failed += b" 202 " not in status_line
        writer.close()

    await asyncio.gather(*(one_client() for _ in range(connections)))
    return done, failed


async def paced(
    port: int, path: str, headers: dict[str, str], seconds: float, rate: float, connections: int
) -> list[float]:
    """Latencies of requests sent at a steady ``rate`` (spread over ``connections`` clients), each
    timed from when it was due, not when it went out: a server that falls behind is not hidden."""
    request = post(path, headers)
    latencies: list[float] = []
    interval = connections / rate
    start = time.monotonic() + 0.1

    async def one_client(offset: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due = start + offset
        while due < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(request)
            status_line = await answer(reader)
            if b" 202 " not in status_line:
                raise SystemExit(f"a request was answered {status_line.decode().strip()}")
            latencies.append(time.monotonic() - due)
            due += interval
        writer.close()

    await asyncio.gather(*(one_client(i * interval / connections) for i in range(connections)))
    return latencies


def queue_backlog(db: str, n: int) -> None:
    """Queue ``n`` compass messages, in one transaction."""

    async def go() -> None:
        backend = open_backend(db, "compass")
        number, _ = await active_config(backend)
        body = {"event": "upsert_company", "payload": {"domain": "acme.example", "name": "Acme"}}
        await backend.send(
            [source_message("compass_inbound", "upsert_company", body, None, None, number) for _ in range(n)]
        )
        await backend.close()

    asyncio.run(go())


def done_messages(db: str) -> int:
    with sqlite3.connect(db.removeprefix("sqlite:///"), timeout=60) as conn:
        return int(conn.execute("SELECT count(*) FROM messages WHERE state = 'done'").fetchone()[0])


def while_draining(folder: Path, db: str, key: str, args: argparse.Namespace) -> None:
    """Ingest latency of `flowbus run` at a steady rate: with an idle worker, then with a backlog."""
    path = "/v1/projects/compass/sources/compass_inbound/events"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    rows = []
    for name, backlog in (("idle worker", 0), (f"worker draining {args.while_draining:,}", args.while_draining)):
        queue_backlog(db, backlog)
        before = done_messages(db)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "flowbus", "run", str(COMPASS), "--db", db, "--port", str(port),
             "--log-level", "warning"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(port)
            started = time.monotonic()
            latencies = asyncio.run(paced(port, path, headers, args.seconds, args.rate, args.connections))
            drained = (done_messages(db) - before) / (time.monotonic() - started)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=600)
        latencies.sort()
        p50, p99 = (latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.50, 0.99))
        rows.append((name, len(latencies) / args.seconds, p50, p99, drained))
    print(f"flowbus run on SQLite: ingest at {args.rate:,.0f} requests/s, {args.connections} connections, "
          f"{args.seconds:.0f} s each")  # fmt: skip
    print(f"{'':30}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'p99 vs idle':>13}{'drained/s':>11}")
    for name, rate, p50, p99, drained in rows:
        print(f"{name:30}{rate:>12,.0f}{p50:>10.1f}{p99:>10.1f}{p99 / rows[0][3]:>13.1f}{drained:>11,.0f}")


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


@contextlib.contextmanager
def scratch_database(server: str | None) -> Iterator[str | None]:
    """A fresh database on ``server`` for the run, dropped after (None: no server given)."""
    if server is None:
        yield None
        return
    import psycopg  # only for --postgres

    name = f"flowbus_bench_ingest_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: flowbus runs on a scratch database there")
    parser.add_argument("--while-draining", type=int, metavar="N", help="latency of flowbus run beside a backlog of N")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s sent with --while-draining")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.postgres) as postgres_db:
        folder = Path(tmp)
        (folder / "bare.py").write_text(BARE)
        (folder / "flowbus_app.py").write_text(FLOWBUS)
        db = postgres_db or f"sqlite:///{folder / 'flowbus.db'}"
        publish = subprocess.run(
            [sys.executable, "-m", "flowbus", "publish", str(COMPASS), "--db", db], check=True, capture_output=True
        )
        assert publish.returncode == 0
        key = subprocess.run(
            [sys.executable, "-m", "flowbus", "keys", "create", "--name", "bench", "--scope", "ingest", "--db", db],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()[-1]  # fmt: skip
        if args.while_draining is not None:
            while_draining(folder, db, key, args)
            return
        results = {}
        for name, module, path, headers in (
            ("bare ASGI app (202)", "bare", "/", {}),
            ("flowbus source ingest", "flowbus_app", "/v1/projects/compass/sources/compass_inbound/events",
             {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}),
        ):  # fmt: skip
            port = free_port()
            server = serve(folder, module, port, {"FLOWBUS_DB": db})
            try:
                done, failed = asyncio.run(load(port, path, headers, args.seconds, args.connections))
            finally:
                server.terminate()
                server.wait(timeout=30)
            if failed:
                raise SystemExit(f"{name}: {failed} of {done} requests were not answered 202")
            results[name] = done / args.seconds
    base = results["bare ASGI app (202)"]
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(f"ingest over loopback on {where}, {args.connections} connections, {args.seconds:.0f} s each")
    print(f"{'':26}{'requests/s':>12}{'vs bare':>10}")
    for name, rate in results.items():
        print(f"{name:26}{rate:>12,.0f}{rate / base:>10.2f}")


if __name__ == "__main__":
    main()
