from __future__ import annotations

import textwrap

import pytest

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.stores.memory import MemoryBackend


@pytest.fixture
def engine_for():
    """An in-memory engine for a config given as YAML text."""

    def build(text: str, *, limits: RuntimeLimits | None = None) -> Engine:
        loaded = load_config_text(textwrap.dedent(text), file="test.yaml")
        return Engine(loaded, backend=MemoryBackend(), limits=limits)

    return build
