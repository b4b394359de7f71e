"""The YAML blocks of the config reference that say they are whole configs load as written, and
the flow-only one upserts the reference's sample message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flowbus.config import load_config_text
from flowbus.engine import Engine
from flowbus.runtime.records import RunStatus
from flowbus.stores.memory import MemoryBackend
from flowbus.testing import entities

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "config-reference.md"
TEXT = REFERENCE.read_text()
#: a block marked `<!-- a whole config ... -->` on the line before its fence
WHOLE = re.compile(r"<!-- a whole config[^>]*-->\n```yaml\n(.*?)```", re.DOTALL)
BLOCKS = WHOLE.findall(TEXT)


def test_the_reference_marks_its_whole_config_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_whole_config_in_the_reference_loads_as_written_without_warnings(block):
    loaded = load_config_text(block, file=str(REFERENCE))
    assert loaded.warnings == ()


async def test_the_flow_only_example_upserts_the_sample_message_by_its_domain():
    [flow_only] = [block for block in BLOCKS if "targets:" not in block and "compass_inbound" in block]
    [sample] = re.findall(r"```json\n(.*?)```", TEXT, re.DOTALL)[:1]
    engine = Engine(load_config_text(flow_only, file=str(REFERENCE)), backend=MemoryBackend())
    message = json.loads(sample)
    [run] = await engine.handle("compass_inbound", engine.event_type_of("compass_inbound", message) or "", message)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert entities(engine, "company") == {"acme.example": message["payload"]}
