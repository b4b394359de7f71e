"""The README as a newcomer follows it: its commands, its YAML and its Python, each run as written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> dict[str, str]:
    """The two set-up commands, read by the same code that ``.ci/run`` uses."""
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.setup_commands(README)  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_has_one_main_job_command_and_one_test_command():
    commands = readme_commands()
    assert commands["main"].endswith("flowbus run examples/compass/flowbus.yaml")
    assert commands["test"].endswith("&& pytest")


def test_the_quickstart_yaml_is_the_example_file_it_names():
    [(name, block)] = re.findall(
        r"1\. Write `flowbus.yaml` \(this is `([^`]+)`\):\n\n   ```yaml\n(.*?)   ```", README, re.S
    )
    assert textwrap.dedent(block) == (ROOT / name).read_text(encoding="utf-8")


def test_the_python_snippet_passes_as_a_pytest_test(tmp_path):
    [snippet] = re.findall(r"```python\n(.*?)```", README, re.S)
    (tmp_path / "test_readme_snippet.py").write_text(snippet)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(ROOT), str(tmp_path / "test_readme_snippet.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.slow
def test_a_fresh_clone_runs_the_main_job_as_the_readme_writes_it(tmp_path):
    """git clone, then the README's main-job command pasted as is (on a free port), then its curls."""
    clone = tmp_path / "flowbus"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "FLOWBUS_DB")}
    env |= {"FLOWBUS_PORT": str(port), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    log_path = tmp_path / "main-job.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["bash", "-c", readme_commands()["main"]],
            cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        out = _wait_for(log_path, process, "serving http", timeout_s=600)
        # the dashboard's address, to sign in with the admin key printed above it
        dashboard = re.search(r"open the dashboard: (http://\S+) and sign in with the admin key above", out)
        assert dashboard is not None and dashboard.group(1) == f"http://127.0.0.1:{port}/", out
        assert 'name="key"' in httpx.get(dashboard.group(1), timeout=10).text
        send, see = (line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        assert f":{port}/" in send, send
        sent = subprocess.run(shlex.split(send), capture_output=True, text=True, timeout=30, check=True)
        message_id = json.loads(sent.stdout)["message_id"]
        listed: dict = {"items": []}
        deadline = time.monotonic() + 60
        while not listed["items"] and time.monotonic() < deadline:
            time.sleep(0.2)
            listed = json.loads(subprocess.run(shlex.split(see), capture_output=True, timeout=30, check=True).stdout)
        [run] = listed["items"]
        assert (run["message_id"], run["flow"], run["status"]) == (message_id, "compass_company_upsert", "succeeded")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=60)
    assert code == 0, log_path.read_text()


def _wait_for(log_path: Path, process: subprocess.Popen[bytes], text: str, *, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = log_path.read_text()
        if text in out:
            return out
        assert process.poll() is None, f"the main-job command ended with {process.returncode}:\n{out}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout_s:.0f} s:\n{log_path.read_text()}")


def test_the_on_a_database_block_runs_as_written_from_the_first_publish_on(tmp_path):
    [block] = re.findall(r"## On a database, with workers\n.*?```bash\n(.*?)```", README, re.S)
    out = run_database_block(block.strip().splitlines(), tmp_path)
    assert "nothing -> v1: sources: 1 added; flows: 1 added" in out


def test_the_on_a_database_example_of_flowbus_help_runs_as_written(tmp_path):
    from flowbus.cli import main

    assert main.help is not None
    block = main.help.split("On a database", 1)[1].split("\n", 1)[1]
    lines = [line.strip() for line in block.replace("\\\n", " ").strip().splitlines()]
    out = run_database_block(lines, tmp_path)
    assert "run compass_company_upsert [succeeded]" in out


def run_database_block(lines: list[str], cwd: Path) -> str:
    """Each line in order, in bash with -e, in ``cwd`` (the examples linked in): the worker runs in
    the background as written, and the test waits until it has run the message the send sent before
    the next line; ``<message id>`` is the id the send printed. Its stdout and stderr."""
    assert "flowbus worker &" in lines[1], lines
    assert lines[2].startswith(("id=$(flowbus send ", "flowbus send ")), lines
    send = lines[2] if lines[2].startswith("id=$(") else f"id=$({lines[2]})"
    wait_for_the_run = (
        "for _ in $(seq 300); do flowbus runs | grep -q succeeded && break; sleep 0.1; done; "
        "flowbus runs | grep -q succeeded"
    )
    script = "\n".join([
        "set -euo pipefail",
        lines[0], lines[1], "worker=$!", "trap 'kill $worker; wait $worker' EXIT", send, wait_for_the_run,
        *(line.replace("<message id>", '"$id"') for line in lines[3:]),
    ])  # fmt: skip
    (cwd / "examples").symlink_to(ROOT / "examples")
    env = {key: value for key, value in os.environ.items() if key != "FLOWBUS_DB"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, script + "\n" + result.stdout + result.stderr
    return result.stdout + result.stderr
