from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def write_config(tmp_path: Path):
    """Write config text to a file and return its path."""

    def write(text: str, name: str = "flowbus.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
