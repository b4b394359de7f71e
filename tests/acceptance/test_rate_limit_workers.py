"""A target's rate limit holds across worker processes: two `flowbus worker` processes on one
PostgreSQL database call a real HTTP server, which counts the calls in every window of the period."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from http.server import BaseHTTPRequestHandler

from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.queue import MessageState
from flowbus.stores import open_backend

LIMIT, PERIOD_S, MESSAGES = 4, 2.0, 16
WORKER = [sys.executable, "-m", "flowbus", "worker", "--project", "shop", "--batch-size", "2"]


class Counter(BaseHTTPRequestHandler):
    received: list[float] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Counter.received.append(time.time())
        payload = json.dumps({"ok": True}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def config(base_url: str) -> str:
    return textwrap.dedent(f"""
        project: {{name: shop}}
        sources: [{{name: web, event_type_from: "$.kind"}}]
        targets:
          - name: crm
            type: http
            base_url: "{base_url}"
            rate_limit: {{limit: {LIMIT}, period: 2s}}
        flows:
          - name: push
            source: web
            event_type: order
            steps:
              - {{id: send, action: http, target: crm, method: POST, path: /orders, body: {{id: "$.id"}}}}
    """)


def most_in_a_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_target_rate_limit_holds_across_two_worker_processes(postgres_url, tmp_path, http_server):
    Counter.received = []
    url = http_server(Counter)
    backend = open_backend(postgres_url, "shop")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await publish_config(backend, config(url), file="flowbus.yaml")
        number, loaded = await active_config(backend)
        engine = Engine(loaded, backend=backend, config_version=number)
        ids = [await engine.send("web", "order", {"kind": "order", "id": f"o{i}"}) for i in range(MESSAGES)]
        logs = [tmp_path / f"worker{n}.log" for n in range(2)]
        for log in logs:
            with log.open("wb") as sink:
                workers.append(
                    subprocess.Popen([*WORKER, "--db", postgres_url], stdout=subprocess.DEVNULL, stderr=sink)
                )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [(await backend.get_message(i)).state for i in ids]
            if all(state is MessageState.DONE for state in states):
                break
            time.sleep(0.2)
        assert all(state is MessageState.DONE for state in states), states
        received = Counter.received
        assert len(received) == MESSAGES  # each message called once: waits and deferrals spend nothing
        gaps = [round(b - a, 3) for a, b in zip(sorted(received), sorted(received)[1:], strict=False)]
        assert most_in_a_window(received, PERIOD_S) <= LIMIT, gaps
        # and the limit was the bound, not idleness: the calls took about MESSAGES / LIMIT periods
        assert max(received) - min(received) >= (MESSAGES / LIMIT - 1) * PERIOD_S
        for process in workers:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        # both processes took turns: each ran some of the messages
        assert all("run finished" in log.read_text() for log in logs)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=30)
        await backend.close()
