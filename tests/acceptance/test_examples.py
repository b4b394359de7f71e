"""The bundled examples validate and run as written, through the Python API and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from flowbus.config import load_config
from flowbus.config.document import parse_file
from flowbus.errors import Rejected
from flowbus.runtime.records import RunStatus
from flowbus.testing import entities, memory_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SHOP = EXAMPLES / "shop" / "flowbus.yaml"
SEED = parse_file(EXAMPLES / "shop" / "seed.yaml").data
COMPASS = EXAMPLES / "compass" / "flowbus.yaml"

GOOD_ORDER = {
    "CustomerId": "cust-ada",
    "OrderNumber": "SO-1",
    "Lines": [{"Sku": "KB-01", "Quantity": 2}, {"Sku": "MS-02", "Quantity": 1}],
}
SHORT_ORDER = {
    "CustomerId": "cust-alan",
    "OrderNumber": "SO-2",
    "Lines": [{"Sku": "KB-01", "Quantity": 1}, {"Sku": "MN-27", "Quantity": 3}],
}


def flowbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowbus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_good_order_shows_the_sync_effect_before_any_async_handler_ran():
    engine = await memory_engine(SHOP, seed=SEED)
    run = await engine.run_flow("CreateOrder", GOOD_ORDER)
    assert run.status is RunStatus.SUCCEEDED, run.error
    order_id = run.outputs["OrderId"]
    assert run.outputs["Total"] == Decimal("204.30")  # 2 x 89.90 + 24.50

    # committed with the order: its lines, the stock taken by the sync handler, the event, 4 queued messages
    assert entities(engine, "Order")[order_id]["total"] == Decimal("204.30")
    assert len(entities(engine, "OrderLine")) == 2
    assert entities(engine, "Product")["KB-01"]["stock"] == 23
    assert entities(engine, "Product")["MS-02"]["stock"] == 39
    [event] = engine.backend.all_events()
    assert event.data["IsFirstOrder"] is True and event.data["TotalAmount"] == Decimal("204.30")
    assert sorted(m.body["handler"] for m in engine.backend.open_messages()) == [
        "AwardLoyaltyPoints",
        "NotifyWarehouse",
        "SendOrderConfirmation",
        "UpdateAnalytics",
    ]
    assert entities(engine, "Email") == {} and entities(engine, "PickingTicket") == {}

    runs = await engine.drain()
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 4, [r.error for r in runs]
    [email] = entities(engine, "Email").values()
    assert email["to"] == "ada@example.com" and email["subject"] == "Your order SO-1"
    assert "204.30" in email["body"]
    [ticket] = entities(engine, "PickingTicket").values()
    assert ticket["order_id"] == order_id and len(ticket["lines"]) == 2
    [day] = entities(engine, "DailySales").values()
    assert (day["orders"], day["revenue"]) == (1, Decimal("204.30"))
    customer = entities(engine, "Customer")["cust-ada"]
    assert (customer["order_count"], customer["loyalty_points"]) == (1, 204 + 50)


async def test_a_second_order_is_not_a_first_order_and_analytics_add_up():
    engine = await memory_engine(SHOP, seed=SEED)
    await engine.run_flow("CreateOrder", GOOD_ORDER)
    await engine.run_flow("CreateOrder", {**GOOD_ORDER, "OrderNumber": "SO-3"})
    await engine.drain()
    events = engine.backend.all_events()
    assert [e.data["IsFirstOrder"] for e in events] == [True, False]
    [day] = entities(engine, "DailySales").values()
    assert (day["orders"], day["revenue"]) == (2, Decimal("408.60"))
    assert entities(engine, "Customer")["cust-ada"]["loyalty_points"] == 204 + 50 + 204


async def test_a_short_stock_order_leaves_nothing_behind():
    engine = await memory_engine(SHOP, seed=SEED)
    run = await engine.run_flow("CreateOrder", SHORT_ORDER)
    assert run.status is RunStatus.REJECTED
    assert run.error == (
        "sync handler 'DeductInventoryOnOrder' rejected OrderPlaced: not enough stock of MN-27: 1 left, 3 ordered"
    )
    assert entities(engine, "Order") == {}
    assert entities(engine, "OrderLine") == {}
    assert len(engine.backend.all_events()) == 0
    assert engine.backend.open_messages() == []
    assert entities(engine, "Product")["KB-01"]["stock"] == 25  # the first line's deduction rolled back too
    assert entities(engine, "Customer")["cust-alan"]["order_count"] == 3
    assert await engine.drain() == []


async def test_publishing_the_shop_event_directly_runs_the_same_handlers():
    engine = await memory_engine(
        SHOP, seed={**SEED, "Order": [{"id": "o1", "lines": [{"Sku": "MN-27", "Quantity": 5}]}]}
    )
    with pytest.raises(Rejected, match="not enough stock of MN-27"):
        await engine.publish("OrderPlaced", {
            "OrderId": "o1", "CustomerId": "cust-ada", "OrderNumber": "X", "TotalAmount": 10,
            "OrderDate": "2026-11-22T10:00:00Z",
        })  # fmt: skip
    assert len(engine.backend.all_events()) == 0


async def test_the_compass_example_upserts_the_company_by_domain():
    engine = await memory_engine(COMPASS)
    payload = json.loads((EXAMPLES / "compass" / "upsert_company.json").read_text())
    event_type = engine.event_type_of("compass_inbound", payload)
    assert event_type == "upsert_company"
    [run] = await engine.handle("compass_inbound", event_type, payload)
    assert run.status is RunStatus.SUCCEEDED
    await engine.handle(
        "compass_inbound",
        event_type,
        {"event": "upsert_company", "payload": {"domain": "acme.example", "employees": 1300}},
    )
    assert entities(engine, "company") == {
        "acme.example": {
            "domain": "acme.example",
            "name": "Acme Corporation",
            "industry": "Manufacturing",
            "employees": 1300,
        }
    }


def test_both_examples_validate_from_the_command_line():
    result = flowbus("validate", str(SHOP), str(COMPASS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{SHOP}: ok: project shop: 0 sources, 1 event, 6 flows, 5 handlers, 1 target",
        f"{COMPASS}: ok: project compass: 1 source, 0 events, 1 flow, 0 handlers, 1 target",
    ]


def test_flowbus_try_runs_the_compass_example_and_prints_the_trace():
    result = flowbus(
        "try",
        str(COMPASS),
        "--source",
        "compass_inbound",
        "--data",
        f"@{EXAMPLES / 'compass' / 'upsert_company.json'}",
    )
    assert result.returncode == 0, result.stderr
    assert "run compass_company_upsert [succeeded]" in result.stdout
    assert "step upsert_hubspot (upsert) [succeeded]" in result.stdout
    assert "store after draining: events 0, company 1" in result.stdout


def test_flowbus_try_runs_a_good_shop_order_as_json():
    result = flowbus("try", str(SHOP), "--flow", "CreateOrder", "--data", f"@{EXAMPLES / 'shop' / 'order.json'}",
                     "--seed", str(EXAMPLES / "shop" / "seed.yaml"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "ok"
    [root] = out["trace"]
    publish = next(s for s in root["children"] if s["kind"] == "step" and s["id"] == "placed")
    [event] = publish["children"]
    assert event["type"] == "OrderPlaced"
    # the whole chain in one tree: the sync handler ran first, the async ones after draining
    sync, *later = [r["handler"] for r in event["children"]]
    assert sync == "DeductInventoryOnOrder"
    assert sorted(later) == sorted(r["handler"] for r in out["async_runs"])
    assert out["before_drain"]["queued_messages"] == 4
    assert "Email" not in out["before_drain"]["store"]
    assert sorted(r["handler"] for r in out["async_runs"]) == [
        "AwardLoyaltyPoints",
        "NotifyWarehouse",
        "SendOrderConfirmation",
        "UpdateAnalytics",
    ]
    assert out["store"]["Email"] == 1 and out["store"]["PickingTicket"] == 1


def test_flowbus_try_on_a_short_stock_order_exits_4_and_keeps_nothing():
    result = flowbus("try", str(SHOP), "--flow", "CreateOrder", "--data", f"@{EXAMPLES / 'shop' / 'order-short-stock.json'}",
                     "--seed", str(EXAMPLES / "shop" / "seed.yaml"))  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    assert "run CreateOrder [rejected]" in result.stdout
    assert "not enough stock of MN-27" in result.stdout
    assert "store after draining: events 0, Customer 2, Product 3" in result.stdout


def test_the_bundled_examples_load_without_warnings():
    for path in sorted(EXAMPLES.glob("*/flowbus.yaml")):
        assert load_config(path).warnings == (), path
