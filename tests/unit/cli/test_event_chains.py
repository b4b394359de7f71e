"""``flowbus try`` on an event chain: one tree, each run once, and JSON at any depth."""

from __future__ import annotations

import json

from click.testing import CliRunner

from flowbus.cli import main

#: a handler that publishes the event that triggers it, until ``n`` reaches ``until``
CHAIN = """
events: [{{name: Tick, properties: {{n: {{type: Integer, required: true}}}}}}]
flows:
  - name: Count
    inputs: {{n: {{type: Integer}}}}
    steps:
      - id: more
        action: if
        condition: "=inputs.n < {until}"
        then: [{{id: next, action: publish, event: Tick, properties: {{n: "=inputs.n + 1"}}}}]
handlers: [{{name: again, event: Tick, flow: Count, mode: async, bindings: {{n: n}}}}]
"""


def try_chain(write_config, events: int, *options: str):
    path = write_config(CHAIN.format(until=events), name=f"chain{events}.yaml")
    result = CliRunner().invoke(main, ["try", str(path), "--event", "Tick", "--data", '{"n": 1}', *options])
    assert result.exit_code == 0, result.output
    return result.stdout  # the config's warning (an async cycle) goes to stderr


def test_a_chain_is_printed_as_one_tree_in_lines_linear_in_its_length(write_config):
    lines = {n: len(try_chain(write_config, n).splitlines()) for n in (4, 8, 16)}
    per_event = (lines[8] - lines[4]) / 4
    assert lines[16] - lines[8] == 8 * per_event  # 877 lines for 17 events when each run repeated the rest
    out = try_chain(write_config, 17)
    assert out.count("handler again -> run Count [succeeded]") == 17 + 17  # once in the tree, once in the list
    assert "(depth 16)" in out


def test_the_json_trace_of_the_longest_chain_parses_with_every_event_once(write_config):
    events = 17  # the engine's default max_chain_depth is 16: events of depth 0 to 16
    out = json.loads(try_chain(write_config, events, "--json"))
    found, stack = [], list(out["trace"])
    while stack:
        node = stack.pop()
        found += [node["data"]["n"]] if node["kind"] == "event" else []
        stack.extend(node["children"])
    assert sorted(found) == list(range(1, events + 1))
    assert len(out["async_runs"]) == events and all("children" not in r for r in out["async_runs"])
