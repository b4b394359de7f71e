"""`flowbus run` as a user starts it: one process that publishes, serves and works."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
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
        assert "serving http" in out, f"flowbus run did not start in 60 s:\n{out}"
        assert "published version 1 (sources: 1 added; flows: 1 added; targets: 1 added)" in out
        token = re.search(r"Bearer (fbk_\S+)'", out).group(1)
        # the printed curl, pasted as is, sends the bundled example: the source's path finds its
        # type, so it needs no header
        send, see = (line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        assert '"event":"upsert_company"' in send and "X-Event-Type" not in send
        sent = subprocess.run(shlex.split(send), capture_output=True, text=True, timeout=30, check=True)
        assert '"message_id"' in sent.stdout, sent
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/projects/compass/sources/compass_inbound/events",
            json={"event": "upsert_company", "payload": {"domain": "globex.example", "name": "Globex"}},
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
        assert run["children"][0]["output"] == {"domain": "globex.example", "name": "Globex"}
        backend = SqliteBackend(tmp_path / ".flowbus" / "flowbus.db", "compass")
        companies = asyncio.run(backend.entities("company"))
        assert companies["globex.example"] == {"domain": "globex.example", "name": "Globex"}
        assert companies["acme.example"]["name"] == "Acme Corporation"  # the printed example's
        # the second printed curl lists what ran: both messages' runs, newest first
        listed = json.loads(subprocess.run(shlex.split(see), capture_output=True, timeout=30, check=True).stdout)
        assert [r["status"] for r in listed["items"]] == ["succeeded", "succeeded"]
        assert listed["items"][0]["message_id"] == message_id
        # and its worker logged each run, with the message it ran for
        line = "run finished flow=compass_company_upsert status=succeeded duration_ms="
        while (tmp_path / "run.log").read_text().count(line) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"message_id={message_id} config_version=1" in (tmp_path / "run.log").read_text()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()
    assert (tmp_path / "run.log").read_text().rstrip().endswith("stopped")
