"""`flowbus run` as a user starts it: one process that publishes, serves and works."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")

from flowbus.stores.sqlite import SqliteBackend

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_flowbus_run_serves_the_compass_example_end_to_end(tmp_path):
    shutil.copytree(EXAMPLES / "compass", tmp_path / "compass")
    port = free_port()
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "flowbus", "run", "compass/flowbus.yaml", "--port", str(port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "serving http" not in (tmp_path / "run.log").read_text() and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        out = (tmp_path / "run.log").read_text()
        assert "published version 1 (sources: 1 added; flows: 1 added; targets: 1 added)" in out
        token = re.search(r"Bearer (fbk_\S+)'", out).group(1)
        # the printed curl sends the bundled example, whose type the source's path finds: no header
        assert '"event":"upsert_company"' in out
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/projects/compass/sources/compass_inbound/events",
            json={"event": "upsert_company", "payload": {"domain": "acme.example", "name": "Acme"}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        message_id = response.json()["message_id"]
        # the trace, read back through the API: the message's run and its step
        message: dict = {"runs": []}
        while time.monotonic() < deadline and not message["runs"]:
            message = httpx.get(
                f"http://127.0.0.1:{port}/v1/projects/compass/messages/{message_id}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            time.sleep(0.1)
        [run] = message["runs"]
        assert (run["flow"], run["status"]) == ("compass_company_upsert", "succeeded")
        assert run["children"][0]["output"] == {"domain": "acme.example", "name": "Acme"}
        backend = SqliteBackend(tmp_path / ".flowbus" / "flowbus.db", "compass")
        assert asyncio.run(backend.entities("company")) == {"acme.example": {"domain": "acme.example", "name": "Acme"}}
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()
    assert (tmp_path / "run.log").read_text().rstrip().endswith("stopped")
