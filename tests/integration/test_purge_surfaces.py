"""``flowbus purge``, the admin API's purge route and the metrics of what is kept, on a real
SQLite file."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from flowbus.cli import main
from flowbus.engine import Engine
from flowbus.publishing import active_config, publish_config
from flowbus.stores.sqlite import SqliteBackend

CONFIG = """
project: {name: shop}
sources: [{name: shop}]
flows:
  - name: Take
    source: shop
    event_type: order
    steps: [{id: note, action: set, vars: {id: "$.id"}}]
retention: {events: 30d, runs: 30d, steps: 7d, messages: 3d, dead_letters: 90d}
"""


async def orders_done(db, count: int) -> None:
    backend = SqliteBackend(db, "shop")
    await publish_config(backend, CONFIG, file="flowbus.yaml")
    number, loaded = await active_config(backend)
    engine = Engine(loaded, backend=backend, config_version=number)
    for n in range(count):
        await engine.send("shop", "order", {"id": f"o{n}"})
    await engine.drain()
    await backend.close()


@pytest.fixture
def purge(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWBUS_DB", f"sqlite:///{tmp_path / 'flowbus.db'}")
    monkeypatch.setenv("FLOWBUS_PROJECT", "shop")
    asyncio.run(orders_done(tmp_path / "flowbus.db", 3))

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["purge", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_purge_keeps_what_the_policy_keeps_and_a_dry_run_counts_what_an_age_removes(purge):
    assert json.loads(purge("--json")) == {
        "dry_run": False, "removed": {"steps": 0, "runs": 0, "events": 0, "messages": 0, "dead_letters": 0},
    }  # fmt: skip
    out = purge("--dry-run", "--before", "2099-01-01T00:00:00Z", "--what", "runs,messages")
    assert out.splitlines() == ["runs          would remove 3", "messages      would remove 3"]
    assert purge("--what", "runs,messages", "--before", "2099-01-01T00:00:00").splitlines() == [
        "runs          removed 3", "messages      removed 3",
    ]  # fmt: skip
    assert (
        purge("--dry-run", "--what", "runs", "--before", "2099-01-01T00:00:00+00:00")
        == "runs          would remove 0\n"
    )


def test_purge_names_the_flag_and_the_reason_of_a_bad_value(purge):
    assert "Invalid value for --what: tasks is not a kind; give some of runs, steps" in purge("--what", "tasks", code=2)
    assert "Invalid value for --before: 'last week' is neither an age (30d) nor a time: not a valid time" in purge(
        "--before", "last week", code=2
    )


async def test_the_admin_api_purges_and_metrics_show_what_is_kept(serve_api):
    from flowbus.keys import Scope

    async with serve_api("shop", CONFIG, scopes=(Scope.ADMIN, Scope.INGEST)) as (client, headers, store):
        number, loaded = await active_config(store)
        engine = Engine(loaded, backend=store, config_version=number)
        for n in range(2):
            await engine.send("shop", "order", {"id": f"o{n}"})
        await engine.drain()
        url = "/v1/projects/shop/purge"
        counted = await client.post(url, json={"dry_run": True, "before": "2099-01-01T00:00:00Z"}, headers=headers)
        assert counted.status_code == 200, counted.text
        assert counted.json()["removed"] == {"runs": 2, "steps": 0, "events": 0, "messages": 2, "dead_letters": 0}
        metrics = (await client.get("/metrics")).text  # of the projects the API has served
        assert 'flowbus_kept_rows{kind="runs",project="shop"} 2.0' in metrics
        assert 'flowbus_oldest_kept_age_seconds{kind="dead_letters",project="shop"} 0.0' in metrics
        done = await client.post(url, json={"before": "2099-01-01T00:00:00Z", "what": ["runs"]}, headers=headers)
        assert done.json() == {"dry_run": False, "removed": {"runs": 2}}
        assert await store.list_runs() == []
        assert 'flowbus_purged_rows_total{kind="runs",project="shop"}' in (await client.get("/metrics")).text

        bad = await client.post(url, json={"before": "soon"}, headers=headers)
        assert bad.status_code == 422 and bad.json()["error"].startswith("before is not a valid time: 'soon'")
        unknown = await client.post(url, json={"what": ["tasks"]}, headers=headers)
        assert unknown.status_code == 422
