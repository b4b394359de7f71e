"""What git tracks: the project's own files, never a virtualenv, a cache or build output.

A tracked virtualenv once carried one machine's absolute shebangs, so the README's first command
failed on every other machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: paths that are made by installing, building or running, never written by hand
GENERATED = re.compile(
    r"""(^|/)(
        \.?venv[^/]*/ | env/ | site-packages/ | __pycache__/ | [^/]*\.py[cod]$ |
        \.(mypy|ruff|pytest)_cache/ | \.hypothesis/ | \.tox/ | \.nox/ | \.coverage | htmlcov/ |
        [^/]*\.egg-info/ | build/ | dist/ | \.flowbus/ | node_modules/
    )""",
    re.VERBOSE,
)


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_git_tracks_no_virtualenv_cache_or_build_output():
    generated = [name for name in tracked_files() if GENERATED.search(name)]
    assert not generated, f"{len(generated)} generated files are tracked, such as {generated[:5]}"


@pytest.mark.parametrize(
    "path",
    [".venv/bin/pip", "venv/lib/python3.11/site-packages/x.py", "flowbus/__pycache__/a.cpython-311.pyc",
     ".mypy_cache/3.11/x.json", "dist/flowbus-0.1.0.tar.gz", "flowbus.egg-info/PKG-INFO", ".flowbus/flowbus.db"],
)  # fmt: skip
def test_the_generated_pattern_knows_what_installing_and_running_leave(path):
    assert GENERATED.search(path)


@pytest.mark.parametrize("path", ["flowbus/cli/env_commands.py", "docs/deploy.md", "benchmarks/bench_w1_sqlite.py"])
def test_the_generated_pattern_leaves_the_projects_own_files_alone(path):
    assert not GENERATED.search(path)
