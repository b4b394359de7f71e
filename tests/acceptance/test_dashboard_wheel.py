"""The wheel ships the dashboard: its templates and static files, htmx's licence with it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "flowbus" / "api" / "dashboard"


@pytest.mark.slow
def test_the_wheel_holds_every_template_and_static_file_of_the_dashboard(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = tmp_path.glob("flowbus-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        path.relative_to(ROOT).as_posix()
        for folder in ("templates", "static")
        for path in (DASHBOARD / folder).iterdir()
    }
    assert {"flowbus/api/dashboard/static/htmx.min.js", "flowbus/api/dashboard/static/htmx.LICENSE"} <= wanted
    assert "flowbus/api/dashboard/templates/base.html" in wanted
    assert wanted <= shipped, sorted(wanted - shipped)
