"""The http action against a real HTTP server on loopback."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import textwrap
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

import flowbus.runtime.actions.http as http_action
from flowbus.config import load_config_text
from flowbus.config.model import HttpTarget
from flowbus.engine import Engine
from flowbus.runtime.actions.http_clients import HttpClients
from flowbus.runtime.records import RunStatus


class Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []
    script: list[int] = []
    #: headers sent with every answer
    answer_headers: dict[str, str] = {}
    #: path -> (status, Location): a redirect answered to a request for that path
    redirects: dict[str, tuple[int, str]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.requests.append(
            {"host": self.headers["Host"], "path": self.path, "headers": dict(self.headers), "body": body.decode()}
        )
        redirect = Recorder.redirects.get(self.path.split("?")[0])
        status = redirect[0] if redirect else Recorder.script.pop(0) if Recorder.script else 201
        payload = json.dumps({"ok": status < 400, "price": 1.10}).encode()
        self.send_response(status)
        if redirect:
            self.send_header("Location", redirect[1])
        for name, value in Recorder.answer_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(http_server) -> str:
    Recorder.requests, Recorder.script, Recorder.answer_headers, Recorder.redirects = [], [], {}, {}
    return http_server(Recorder)


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


async def test_a_cookie_answered_to_one_request_is_not_sent_with_the_next(server):
    Recorder.answer_headers = {"Set-Cookie": "session=customer-a; Path=/"}
    flows = engine(server)
    try:
        for name in ("a", "b"):
            run = await flows.run_flow("push", {"name": name})
            assert run.status is RunStatus.SUCCEEDED, run.error
    finally:
        await flows.close()
    assert len(Recorder.requests) == 2
    assert all("Cookie" not in r["headers"] for r in Recorder.requests), Recorder.requests[1]["headers"]


async def test_a_redirect_within_the_targets_origin_is_followed_with_its_body(server):
    Recorder.redirects = {"/companies": (307, f"{server}/v2/companies")}
    run = await engine(server).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.SUCCEEDED, run.error
    first, second = Recorder.requests
    assert second["path"] == "/v2/companies" and second["body"] == first["body"]
    assert second["headers"]["X-Api"] == "secret"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_to_another_origin_fails_the_step_and_is_not_followed(server, status):
    # the same server by another name: another origin, as another host would be
    elsewhere = server.replace("127.0.0.1", "localhost") + "/elsewhere"
    Recorder.redirects = {"/companies": (status, elsewhere)}
    run = await engine(server).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.FAILED
    assert f"answered HTTP {status}, a redirect to another origin" in (run.error or "")
    assert "localhost" in (run.error or "")
    assert [r["path"] for r in Recorder.requests] == ["/companies?source=flowbus"]  # not followed, not retried


async def test_a_redirect_loop_within_the_origin_fails_the_step(server):
    Recorder.redirects = {"/companies": (307, f"{server}/companies")}
    run = await engine(server).run_flow("push", {"name": "Acme"})
    assert run.status is RunStatus.FAILED
    assert f"redirected more than {http_action.MAX_REDIRECTS} times" in (run.error or "")
    assert len(Recorder.requests) == http_action.MAX_REDIRECTS + 1


async def test_a_client_verifies_against_the_systems_certificate_store(monkeypatch):
    # without SSL_CERT_FILE / SSL_CERT_DIR, the store is the system's, not a bundle shipped with a library
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    target = engine("https://crm.example").plan.targets["crm"]
    assert isinstance(target, HttpTarget)
    clients = HttpClients()
    client = clients.client(target)
    try:
        context: ssl.SSLContext = client._transport._pool._ssl_context  # type: ignore[attr-defined]
        system = ssl.create_default_context()
        if not system.get_ca_certs():
            pytest.skip("this machine's certificate store has no CA file")
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert context.get_ca_certs() == system.get_ca_certs()
    finally:
        await clients.close()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of its own and a certificate for 127.0.0.1 it signed: (CA, certificate, key)."""
    ca, ca_key, cert, key, csr = (folder / n for n in ("ca.pem", "ca.key", "cert.pem", "cert.key", "cert.csr"))
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make certificates with")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=flowbus test CA",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    extensions = folder / "san.cnf"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(extensions), "-out", str(cert))  # fmt: skip
    return ca, cert, key


async def test_https_trusts_a_ca_of_the_systems_store_and_no_other(server, http_server, tmp_path, monkeypatch):
    ca, cert, key = _certificates(tmp_path)  # (the plain `server` is unused here: it resets the Recorder)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    url = http_server(Recorder, tls=tls)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    untrusted = engine(url, max_attempts=1)
    run = await untrusted.run_flow("push", {"name": "Acme"})
    await untrusted.close()
    assert run.status is RunStatus.FAILED and "CERTIFICATE_VERIFY_FAILED" in (run.error or "")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the system's store, as OpenSSL reads it
    trusting = engine(url, max_attempts=1)
    run = await trusting.run_flow("push", {"name": "Acme"})
    await trusting.close()
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert len(Recorder.requests) == 1


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


async def test_requests_to_a_target_reuse_one_connection_until_the_engine_closes(http_server):
    Ports.ports = []
    flows = engine(http_server(Ports))
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
