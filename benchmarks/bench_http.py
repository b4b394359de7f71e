"""What one call of the http action costs: the old path (the standard library's client in a worker
thread, a new connection per call) against the new one (the target's pooled httpx client, its
connection kept open), both against the same local HTTP server, in the same invocation.

The server runs in a process of its own (HTTP/1.1, keep-alive), so its CPU is not counted; over
plain HTTP, and over HTTPS with a self-signed certificate made by ``openssl`` for the run (where a
new connection a call also costs a TLS handshake). CPU is
user + sys of this process over the measured calls only (after a warm-up); calls/s is wall time.
Each path is measured one call at a time and with several calls in flight (as a worker's batch of
messages calling one API does not, but several runs of `flowbus run` may). Ratios are new / old.

    python benchmarks/bench_http.py [--calls 2000] [--concurrency 1,8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flowbus import jsonio
from flowbus.config import load_config_text
from flowbus.runtime.actions import http as http_action
from flowbus.runtime.actions.http_clients import HttpClients

SERVER = textwrap.dedent("""
    import ssl
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as real servers do (TCP_NODELAY)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            payload = b'{"id": "c-1", "ok": true}'
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if len(sys.argv) > 1:  # HTTPS, with this certificate and key
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[1], sys.argv[2])
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()
""")

BODY = {"name": "Acme", "amount": 12.5, "lines": [{"sku": "a", "qty": 2}]}


def old_send(url: str, headers: dict[str, str], data: bytes, timeout_s: float) -> dict[str, Any]:
    """The http action's transport before the pooled client, as it was: urllib, one connection a call."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        raw = response.read(http_action.MAX_RESPONSE_BYTES + 1)
        return http_action._response(response.status, response.headers, raw)


async def measure(name: str, call: Any, calls: int, concurrency: int) -> tuple[float, float]:
    """CPU seconds per call and calls per second of ``call`` made ``calls`` times, ``concurrency`` at once."""
    for _ in range(50):  # warm-up: imports, the first connection, the thread pool
        await call()

    async def lane(n: int) -> None:
        for _ in range(n):
            await call()

    per_lane = calls // concurrency
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(per_lane) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_lane * concurrency
    return cpu / done, done / wall


def certificate(folder: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


async def main(calls: int, concurrencies: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cert, key = certificate(Path(folder))
        os.environ["SSL_CERT_FILE"] = cert  # both clients trust it (OpenSSL's default paths, httpx's trust_env)
        for scheme, extra in (("http", []), ("https", [cert, key])):
            await bench(scheme, extra, calls, concurrencies)


async def bench(scheme: str, server_args: list[str], calls: int, concurrencies: list[int]) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER, *server_args], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        base_url = f"{scheme}://127.0.0.1:{int(server.stdout.readline())}"
        config = load_config_text(f"targets: [{{name: crm, type: http, base_url: '{base_url}', timeout_s: 5}}]")
        [target] = config.config.targets
        url = base_url + "/companies?source=bench"
        headers = {"Idempotency-Key": "run:send", "Accept": "application/json", "Content-Type": "application/json"}
        data = jsonio.dumps(BODY).encode()
        clients = HttpClients()
        request = http_action.Request("POST", url, headers, data)

        async def old() -> None:
            await asyncio.to_thread(old_send, url, headers, data, 5.0)

        async def new() -> None:
            await http_action._send(clients.client(target), request)  # type: ignore[arg-type]

        print(f"\n{scheme.upper()}: {calls} calls of POST {len(data)} bytes, answered 201 with JSON\n")
        print(
            f"{'in flight':>9} | {'path':<28} | {'CPU µs/call':>11} | {'calls/s':>8} | {'CPU ratio':>9} | {'rate ratio':>10}"
        )
        print("-" * 91)
        for concurrency in concurrencies:
            old_cpu, old_rate = await measure("old", old, calls, concurrency)
            new_cpu, new_rate = await measure("new", new, calls, concurrency)
            print(
                f"{concurrency:>9} | {'urllib in a thread (old)':<28} | {old_cpu * 1e6:>11.0f} | {old_rate:>8.0f} | {1:>9.2f} | {1:>10.2f}"
            )
            print(
                f"{concurrency:>9} | {'pooled httpx client (new)':<28} | {new_cpu * 1e6:>11.0f} | {new_rate:>8.0f} | "
                f"{new_cpu / old_cpu:>9.2f} | {new_rate / old_rate:>10.2f}"
            )
        await clients.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,8", help="calls in flight at once, comma-separated")
    args = parser.parse_args()
    asyncio.run(main(args.calls, [int(c) for c in args.concurrency.split(",")]))
