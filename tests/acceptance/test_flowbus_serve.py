"""`flowbus serve` (the API alone) as a deployment starts it, and both servers' refusal of a
port that is taken."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")

COMPASS = Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml"


def flowbus(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flowbus", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, **kwargs,
    )  # fmt: skip


def test_serve_answers_health_and_ingests_for_a_published_project(tmp_path):
    db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    subprocess.run([sys.executable, "-m", "flowbus", "publish", str(COMPASS), "--db", db], check=True, cwd=tmp_path)
    created = subprocess.run(
        [sys.executable, "-m", "flowbus", "keys", "create", "--db", db, "--name", "web", "--scope", "ingest"],
        check=True, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    token = next(word for word in created.stdout.split() if word.startswith("fbk_"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = flowbus("serve", "--db", db, "--port", str(port), cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "flowbus serve did not answer in 30 s"
                time.sleep(0.1)
        assert httpx.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}
        sent = httpx.post(
            f"{base}/v1/projects/compass/sources/compass_inbound/events",
            json={"event": "upsert_company", "payload": {"domain": "a.example"}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert sent.status_code == 202, sent.text
        # a client that goes away halfway through its body: one line in the log, no traceback
        with socket.create_connection(("127.0.0.1", port)) as client:
            head = (
                "POST /v1/projects/compass/sources/compass_inbound/events HTTP/1.1\r\nHost: flowbus\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            )
            client.sendall(head.encode() + b"x" * 1000)
            time.sleep(0.3)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        # the dashboard, on the same port: the sign-in form, refusing the ingest key, taking a read key
        assert 'name="key"' in httpx.get(f"{base}/", timeout=5).text
        reader = subprocess.run(
            [sys.executable, "-m", "flowbus", "keys", "create", "--db", db, "--name", "ops", "--scope", "read"],
            check=True, cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        read_token = next(word for word in reader.stdout.split() if word.startswith("fbk_"))
        with httpx.Client(base_url=base, timeout=5) as browser:
            assert browser.post("/signin", data={"key": token}).status_code == 401
            signed = browser.post("/signin", data={"key": read_token}, follow_redirects=True)
            assert signed.url.path == "/p/compass/" and 'id="throughput"' in signed.text
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
    assert f"serving http://127.0.0.1:{port}" in out
    assert "the client went away before its request was read: POST /v1/projects/compass/sources/" in out
    assert "Traceback" not in out and "Exception in ASGI application" not in out


@pytest.mark.parametrize("command", [["run", str(COMPASS)], ["serve"]])
def test_a_port_that_is_taken_is_named_before_anything_starts(tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = flowbus(*command, "--port", str(port), cwd=tmp_path)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 5, out
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use; choose another with --host or --port" in out
    assert not (tmp_path / ".flowbus").exists()  # nothing was published
