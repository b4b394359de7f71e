"""The http action against a real HTTP server on loopback."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import flowbus.runtime.actions.http as http_action
from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.runtime.records import RunStatus


class Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []
    script: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
        status = Recorder.script.pop(0) if Recorder.script else 201
        payload = json.dumps({"ok": status < 400, "price": 1.10}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.requests = []
    Recorder.script = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(http_action, "BASE_BACKOFF_S", 0.001)


def engine(base_url: str, max_attempts: int = 3) -> Engine:
    text = textwrap.dedent(f"""
        targets:
          - {{name: crm, type: http, base_url: "{base_url}", headers: {{X-Api: secret}}, max_attempts: {max_attempts}, timeout_s: 5}}
        flows:
          - name: push
            inputs: {{name: {{type: String}}}}
            steps:
              - id: send
                action: http
                target: crm
                method: POST
                path: /companies
                query: {{source: flowbus}}
                body: {{name: "=inputs.name", amount: 12.50}}
              - {{id: o, action: output, values: {{status: "=steps.send.status", ok: "=steps.send.body.ok"}}}}
    """)
    return Engine(load_config_text(text))


async def test_a_request_carries_the_body_headers_and_an_idempotency_key(server):
    run = await engine(server).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.outputs == {"status": 201, "ok": True}
    [request] = Recorder.requests
    assert request["path"] == "/companies?source=flowbus"
    assert json.loads(request["body"]) == {"name": "Acme", "amount": 12.50}
    assert request["body"] == '{"name":"Acme","amount":12.50}'
    assert request["headers"]["X-Api"] == "secret"
    assert request["headers"]["Idempotency-Key"] == f"{run.id}:send"


async def test_transient_failures_are_retried_with_the_same_idempotency_key(server):
    Recorder.script = [503, 500]
    run = await engine(server).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.SUCCEEDED
    keys = {r["headers"]["Idempotency-Key"] for r in Recorder.requests}
    assert len(Recorder.requests) == 3 and len(keys) == 1


async def test_a_client_error_fails_at_once(server):
    Recorder.script = [422]
    run = await engine(server).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.FAILED
    assert "answered HTTP 422" in (run.error or "")
    assert len(Recorder.requests) == 1


async def test_exhausted_retries_fail_the_step_with_the_last_error(server):
    Recorder.script = [503, 503]
    run = await engine(server, max_attempts=2).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.FAILED
    assert "failed after 2 attempts: HTTP 503" in (run.error or "")


async def test_an_unreachable_server_is_a_step_failure():
    run = await engine("http://127.0.0.1:9", max_attempts=1).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.FAILED and "failed after 1 attempts" in (run.error or "")


class Ports(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    ports: list[int] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Ports.ports.append(self.client_address[1])
        payload = b'{"ok": true, "price": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


async def test_requests_to_a_target_reuse_one_connection_until_the_engine_closes():
    Ports.ports = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ports)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        flows = engine(f"http://127.0.0.1:{httpd.server_address[1]}")
        for name in ("a", "b", "c"):
            run = await flows.run_flow("push", {"name": name})
            assert run.status is RunStatus.SUCCEEDED, run.error
        assert len(Ports.ports) == 3 and len(set(Ports.ports)) == 1  # one connection, kept open
        assert len(flows.runner.http_clients) == 1
        await flows.close()
        assert len(flows.runner.http_clients) == 0
        run = await flows.run_flow("push", {"name": "d"})  # a request after close opens a new client
        assert run.status is RunStatus.SUCCEEDED and Ports.ports[-1] != Ports.ports[0]
        await flows.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
