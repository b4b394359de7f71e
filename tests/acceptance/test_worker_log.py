"""`flowbus worker`'s log as an operator reads it: a line per finished run, a warning for a message
no flow takes, and `--log-level` to quiet the runs."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

COMPASS = Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml"


def flowbus(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [sys.executable, "-m", "flowbus", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def work(db: Path, *options: str) -> str:
    """Run a worker until no message is open, stop it, and return its log."""
    log = db.parent / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowbus", "worker", "--db", f"sqlite:///{db}", *options],
            cwd=db.parent, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            with sqlite3.connect(db) as conn:
                while conn.execute("SELECT count(*) FROM messages WHERE state IN ('ready', 'leased')").fetchone()[0]:
                    assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, log.read_text()
    return log.read_text()


def send_two(tmp_path: Path) -> tuple[str, str]:
    """A message the compass example routes and one it does not; their ids."""
    db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    routed = flowbus("send", "--db", db, "--source", "compass_inbound", "--data",
                     '{"event": "upsert_company", "payload": {"domain": "a.example"}}', cwd=tmp_path)  # fmt: skip
    stray = flowbus("send", "--db", db, "--source", "compass_inbound", "--data", '{"event": "upsert_compnay"}',
                    cwd=tmp_path)  # fmt: skip
    return routed.split()[-1], stray.split()[-1]


def test_the_worker_logs_each_run_and_warns_of_a_message_no_flow_takes(tmp_path):
    flowbus("publish", str(COMPASS), "--db", f"sqlite:///{tmp_path / 'flowbus.db'}", cwd=tmp_path)
    routed, stray = send_two(tmp_path)
    log = work(tmp_path / "flowbus.db")
    [run_line] = [line for line in log.splitlines() if "run finished" in line]
    assert "INFO    flowbus.worker: run finished flow=compass_company_upsert status=succeeded duration_ms=" in run_line
    assert run_line.endswith(f"message_id={routed} config_version=1")
    [warning] = [line for line in log.splitlines() if "WARNING" in line]
    assert warning.split(" ", 2)[2] == (
        "WARNING flowbus.worker: message matched no flow: no enabled trigger flow for (compass_inbound, "
        "upsert_compnay); nearest configured pairs: (compass_inbound, upsert_company) "
        f"message_id={stray} source=compass_inbound event_type=upsert_compnay config_version=1"
    )

    _, stray = send_two(tmp_path)
    quiet = work(tmp_path / "flowbus.db", "--log-level", "warning")
    assert "run finished" not in quiet and "worker started" not in quiet
    assert f"message_id={stray}" in quiet
