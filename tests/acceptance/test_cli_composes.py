"""The real ``flowbus`` command in a shell: ``init`` makes a project that runs as printed, and
the ids that commands print feed other commands."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path


def shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in bash, where ``flowbus`` is this interpreter's flowbus and the database is in ``cwd``."""
    env = {**os.environ, "FLOWBUS_DB": f"sqlite:///{cwd / 'flowbus.db'}", "PY": sys.executable}
    prelude = 'set -euo pipefail\nflowbus() { "$PY" -m flowbus "$@"; }\n'
    return subprocess.run(
        ["bash", "-c", prelude + script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_init_writes_a_project_whose_printed_try_command_succeeds(tmp_path):
    made = shell("flowbus init shop", tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == ["shop/flowbus.yaml", "shop/signup.json", "shop/.gitignore"]
    assert (tmp_path / "shop" / ".gitignore").read_text().splitlines()[-1] == ".flowbus/"
    [validate, try_, run] = [line.strip() for line in made.stderr.splitlines() if line.startswith("  flowbus ")]
    assert run == "flowbus run shop/flowbus.yaml"
    validated = shell(validate, tmp_path)
    assert validated.returncode == 0 and "ok: project shop: 1 source, 1 event, 2 flows, 1 handler" in validated.stdout
    tried = subprocess.run(
        [sys.executable, "-m", *shlex.split(try_)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tried.returncode == 0, tried.stdout + tried.stderr
    assert "run on_signup [succeeded]" in tried.stdout
    assert "handler welcome -> run welcome_member [succeeded]" in tried.stdout
    assert "store after draining: events 1, member 1" in tried.stdout


def test_trace_takes_the_id_that_send_prints(tmp_path):
    done = shell(
        """
        flowbus init . > /dev/null 2>&1
        flowbus publish flowbus.yaml > /dev/null 2>&1
        flowbus trace "$(flowbus send --event MemberSignedUp --data '{"Email": "ada@example.com"}')"
        flowbus trace $(flowbus send --source signup_form --data @signup.json)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    event_line, _data, message_line = done.stdout.splitlines()
    assert event_line.startswith("event MemberSignedUp v1 ") and event_line.endswith("(depth 0)")
    assert message_line.startswith("message ") and message_line.endswith(
        "source signup_form type signed_up [ready]: no run yet"
    )
    assert done.stderr.count("sent ") == 2
