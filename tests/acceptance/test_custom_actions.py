"""A worker runs the config's Python steps when given them: `flowbus worker --actions module:attr`
imports the user's module from the working directory, and a worker without them says so at start."""

from __future__ import annotations

import sqlite3
import textwrap

import click
import pytest

from flowbus.cli.custom_actions import load_actions, missing_actions
from flowbus.config import load_config_text

from .test_worker_log import flowbus, work

CONFIG = """
project: {name: stamps}
events: [{name: Paid, properties: {Id: {type: String, required: true}}}]
flows:
  - name: Stamp
    inputs: {Id: {type: String}}
    retry: {max_attempts: 1}
    steps:
      - {id: stamp, action: stamp, with: {id: "=inputs.Id"}}
      - {id: keep, action: save, entity: Stamp, data: {id: "=inputs.Id", by: "=steps.stamp.by"}}
handlers: [{name: stamp, event: Paid, flow: Stamp, mode: async, bindings: {Id: Id}}]
"""

ACTIONS = """
async def stamp(ctx, params):
    return {"by": "stamp-" + params["with"]["id"]}

ACTIONS = {"stamp": stamp}
"""


def test_the_worker_runs_the_python_actions_it_is_given(tmp_path):
    (tmp_path / "flowbus.yaml").write_text(CONFIG)
    (tmp_path / "stamp_actions.py").write_text(ACTIONS)
    db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    flowbus("publish", "flowbus.yaml", "--db", db, cwd=tmp_path)
    flowbus("send", "--db", db, "--event", "Paid", "--data", '{"Id": "p1"}', cwd=tmp_path)
    log = work(tmp_path / "flowbus.db", "--actions", "stamp_actions:ACTIONS")
    assert "does not have" not in log
    with sqlite3.connect(tmp_path / "flowbus.db") as conn:
        assert conn.execute("SELECT status FROM runs WHERE flow = 'Stamp'").fetchall() == [("succeeded",)]
        [(data,)] = conn.execute("SELECT data FROM entities WHERE entity = 'Stamp'").fetchall()
    assert '"by":"stamp-p1"' in data.replace(" ", "")


def test_a_worker_without_them_warns_at_start_and_its_run_fails(tmp_path):
    (tmp_path / "flowbus.yaml").write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    flowbus("publish", "flowbus.yaml", "--db", db, cwd=tmp_path)
    flowbus("send", "--db", db, "--event", "Paid", "--data", '{"Id": "p1"}', cwd=tmp_path)
    log = work(tmp_path / "flowbus.db")
    assert "the config uses actions this process does not have: stamp; give them with --actions" in log
    with sqlite3.connect(tmp_path / "flowbus.db") as conn:
        assert conn.execute("SELECT status FROM runs WHERE flow = 'Stamp'").fetchall() == [("failed",)]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("stamp_actions", "expected MODULE:ATTR"),
        ("no_such_module:ACTIONS", "cannot import no_such_module"),
        ("stamp_actions:MISSING", "module stamp_actions has no attribute 'MISSING'"),
        ("stamp_actions:plain", "action 'plain' is not an async function (async def plain(ctx, params))"),
        ("stamp_actions:NUMBERED", "action names are strings; got 1"),
    ],
)
def test_a_spec_that_gives_no_actions_is_refused_naming_it(tmp_path, monkeypatch, spec, says):
    (tmp_path / "stamp_actions.py").write_text(
        ACTIONS + "\ndef plain(ctx, params):\n    return 1\n\nNUMBERED = {1: stamp}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(click.BadParameter) as refused:
        load_actions([spec])
    assert says in refused.value.message


def test_actions_used_inside_blocks_count_as_used():
    loaded = load_config_text(
        textwrap.dedent("""
        flows:
          - name: F
            steps:
              - id: branch
                action: if
                condition: "=true"
                then: [{id: inner, action: tally}]
              - {id: say, action: log, message: hi}
    """)
    )
    assert missing_actions(loaded.plan, {"if", "log"}) == ["tally"]
