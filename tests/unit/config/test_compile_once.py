"""A config text is compiled once per process, whoever loads it: the CLI, the publisher, a worker
switching versions, the API for each project."""

import pytest

from flowbus.config import ConfigError, load_config, load_config_text
from flowbus.config.loader import _COMPILED_KEPT

TEXT = """
events: [{name: Ping, properties: {n: {type: Integer}}}]
flows:
  - name: Pong
    inputs: {n: {type: Integer}}
    steps: [{id: say, action: log, message: "=inputs.n"}]
handlers: [{name: pong, event: Ping, flow: Pong, bindings: {n: n}}]
"""


def test_the_same_text_is_compiled_once_and_shared():
    first = load_config_text(TEXT, file="a.yaml")
    assert load_config_text(TEXT, file="a.yaml") is first
    assert load_config_text(TEXT.encode(), file="a.yaml") is first  # bytes or text: the same digest
    assert load_config_text(TEXT + "\n", file="a.yaml") is not first


def test_a_file_loads_through_the_same_cache(tmp_path):
    path = tmp_path / "pings.yaml"
    path.write_text(TEXT)
    assert load_config(path) is load_config_text(TEXT, file=str(path))


def test_another_file_name_is_another_load_since_messages_name_the_file():
    assert load_config_text(TEXT, file="a.yaml") is not load_config_text(TEXT, file="b.yaml")


def test_an_invalid_text_fails_every_time():
    bad = TEXT.replace("flow: Pong", "flow: Missing")
    for _ in range(2):
        with pytest.raises(ConfigError, match="Missing"):
            load_config_text(bad, file="bad.yaml")


def test_the_cache_is_bounded_and_forgets_the_least_recently_used():
    first = load_config_text(TEXT, file="first.yaml")
    for n in range(_COMPILED_KEPT):
        load_config_text(TEXT, file=f"other-{n}.yaml")
    assert load_config_text(TEXT, file="first.yaml") is not first
