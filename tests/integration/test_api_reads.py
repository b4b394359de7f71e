"""Reads over HTTP: an ingested message's runs, the event it published, the chain's trace."""

from __future__ import annotations

import datetime as dt
import textwrap

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

import itertools

from flowbus.api import create_app
from flowbus.engine import Engine
from flowbus.keys import Scope, new_key
from flowbus.publishing import active_config, publish_config
from flowbus.stores.sqlite import SqliteBackend

CONFIG = textwrap.dedent("""
    project: {name: shop}
    sources: [{name: web, event_type_from: "$.kind"}]
    events: [{name: Paid, properties: {Id: {type: String, required: true}, Amount: {type: Money, required: true}}}]
    flows:
      - name: Intake
        source: web
        event_type: payment
        steps: [{id: p, action: publish, event: Paid, properties: {Id: "$.id", Amount: "$.amount"}}]
      - name: Book
        inputs: {Id: {type: String, required: true}, Amount: {type: Money}}
        steps: [{id: b, action: save, entity: Booking, data: {id: "=inputs.Id", amount: "=inputs.Amount"}}]
    handlers: [{name: book, event: Paid, flow: Book, bindings: {Id: Id, Amount: Amount}}]
""")


@pytest.fixture
async def api(tmp_path):
    db = tmp_path / "flowbus.db"
    store = SqliteBackend(db, "shop")
    await publish_config(store, CONFIG, file="flowbus.yaml")
    tokens = {}
    for scope in (Scope.INGEST, Scope.READ):
        key, tokens[scope] = new_key("shop", str(scope), (scope,))
        await store.add_key(key)
    app = create_app(f"sqlite:///{db}")
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        yield client, tokens, store
    await store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_message_its_runs_its_event_and_the_chain_trace_read_back(api):
    client, tokens, store = api
    sent = await client.post(
        "/v1/projects/shop/sources/web/events",
        content=b'{"kind": "payment", "id": "p1", "amount": 19.90}',
        headers={**auth(tokens[Scope.INGEST]), "content-type": "application/json"},
    )
    message_id = sent.json()["message_id"]
    number, loaded = await active_config(store)
    await Engine(loaded, backend=store, config_version=number).drain()

    message = (await client.get(f"/v1/projects/shop/messages/{message_id}", headers=auth(tokens[Scope.READ]))).json()
    assert message["state"] == "done" and message["body"]["data"]["amount"] == 19.90
    [run] = message["runs"]
    assert (run["flow"], run["status"]) == ("Intake", "succeeded")
    [publish_step] = run["children"]
    [event] = publish_step["children"]
    assert event["type"] == "Paid" and event["data"] == {"Id": "p1", "Amount": 19.90}

    read = await client.get(f"/v1/projects/shop/events/{event['id']}", headers=auth(tokens[Scope.READ]))
    assert read.json()["data"]["Amount"] == 19.90
    assert '"Amount":19.90' in read.text  # exact, as sent
    trace = (await client.get(f"/v1/projects/shop/events/{event['id']}/trace", headers=auth(tokens[Scope.READ]))).json()
    assert [r["handler"] for r in trace["children"]] == ["book"]
    booked = trace["children"][0]
    run_read = (await client.get(f"/v1/projects/shop/runs/{booked['id']}", headers=auth(tokens[Scope.READ]))).json()
    assert run_read["flow"] == "Book" and run_read["status"] == "succeeded"


@pytest.mark.parametrize("path", ["events/nope", "events/nope/trace", "runs/nope", "messages/nope"])
async def test_unknown_ids_are_404_and_reads_need_the_read_scope(api, path):
    client, tokens, _ = api
    missing = await client.get(f"/v1/projects/shop/{path}", headers=auth(tokens[Scope.READ]))
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    refused = await client.get(f"/v1/projects/shop/{path}", headers=auth(tokens[Scope.INGEST]))
    assert refused.status_code == 403 and "lacks the read scope" in refused.json()["error"]
    assert (await client.get(f"/v1/projects/shop/{path}")).status_code == 401


async def test_metrics_count_ingress_runs_queue_depth_and_dead_letters(api):
    client, tokens, store = api
    await client.post(
        "/v1/projects/shop/sources/web/events",
        json={"kind": "payment", "id": "p1", "amount": 1},
        headers=auth(tokens[Scope.INGEST]),
    )
    await client.post(  # no amount: Paid refuses it, so Intake fails and is dead-lettered by drain()
        "/v1/projects/shop/sources/web/events", json={"kind": "payment", "id": "p2"}, headers=auth(tokens[Scope.INGEST])
    )
    number, loaded = await active_config(store)
    await Engine(loaded, backend=store, config_version=number).drain()
    text = (await client.get("/metrics")).text
    assert 'flowbus_messages_in_total{kind="source",project="shop"}' in text
    assert 'flowbus_runs_total{project="shop",status="failed"}' in text
    assert 'flowbus_dead_letters{project="shop"} 1.0' in text
    assert 'flowbus_queue_depth{project="shop",queue="inbound",state="dead"} 1.0' in text
    assert "flowbus_run_seconds_bucket" in text


def sample(text: str, name: str) -> float:
    """The value of one sample of a Prometheus text exposition."""
    [value] = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


async def test_metrics_give_the_age_of_each_queues_oldest_open_message_and_run_durations_by_flow(api):
    client, tokens, store = api
    sent = await client.post(
        "/v1/projects/shop/sources/web/events",
        json={"kind": "payment", "id": "p1", "amount": 1},
        headers=auth(tokens[Scope.INGEST]),
    )
    oldest = (await store.get_message(sent.json()["message_id"])).created_at
    text = (await client.get("/metrics")).text
    age = sample(text, 'flowbus_queue_oldest_message_age_seconds{project="shop",queue="inbound"}')
    assert 0 < age <= (dt.datetime.now(dt.UTC) - oldest).total_seconds()
    assert sample(text, 'flowbus_queue_oldest_message_age_seconds{project="shop",queue="outbound"}') == 0
    number, loaded = await active_config(store)
    await Engine(loaded, backend=store, config_version=number).drain()
    text = (await client.get("/metrics")).text
    assert sample(text, 'flowbus_queue_oldest_message_age_seconds{project="shop",queue="inbound"}') == 0
    # Intake ran for the message, and Book for the event it published (a sync handler: in Intake's run)
    assert sample(text, 'flowbus_flow_run_seconds_count{flow="Intake",project="shop"}') >= 1
    assert sample(text, 'flowbus_flow_run_seconds_count{flow="Book",project="shop"}') >= 1


async def test_a_message_no_flow_takes_reads_back_unmatched_with_its_nearest_pairs_and_is_counted(api):
    client, tokens, store = api
    sent = await client.post(  # "paymnet": no flow takes it, and the ingress still answers 202
        "/v1/projects/shop/sources/web/events",
        json={"kind": "paymnet", "id": "p1", "amount": 1},
        headers=auth(tokens[Scope.INGEST]),
    )
    assert sent.status_code == 202
    message_id = sent.json()["message_id"]
    number, loaded = await active_config(store)
    assert await Engine(loaded, backend=store, config_version=number).drain() == []

    message = (await client.get(f"/v1/projects/shop/messages/{message_id}", headers=auth(tokens[Scope.READ]))).json()
    assert message["state"] == "unmatched"
    [note] = message["runs"]
    assert (note["kind"], note["source"], note["event_type"]) == ("unmatched", "web", "paymnet")
    assert note["nearest"] == [["web", "payment"]] and note["config_version"] == number
    assert note["note"] == (
        "matched no flow: no enabled trigger flow for (web, paymnet); nearest configured pairs: (web, payment)"
    )
    text = (await client.get("/metrics")).text
    assert 'flowbus_messages_unmatched_total{project="shop",source="web"}' in text
    assert 'flowbus_queue_depth{project="shop",queue="inbound",state="unmatched"} 1.0' in text


async def read_all(client, path, token, **params):
    """Every item of a list route, following next_cursor page by page."""
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(f"/v1/projects/shop/{path}", params=query, headers=auth(token))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_events_and_runs_are_listed_newest_first_filtered_and_paged(api):
    client, tokens, store = api
    for n in range(7):
        body = {"kind": "payment", "id": f"p{n}", "amount": n + 1} if n != 3 else {"kind": "payment", "id": "p3"}
        await client.post("/v1/projects/shop/sources/web/events", json=body, headers=auth(tokens[Scope.INGEST]))
    number, loaded = await active_config(store)
    await Engine(loaded, backend=store, config_version=number).drain()
    read = tokens[Scope.READ]

    events = await read_all(client, "events", read, limit=2)
    assert [e["data"]["Id"] for e in events] == ["p6", "p5", "p4", "p2", "p1", "p0"]  # p3 was refused
    assert await read_all(client, "events", read, type="Paid", limit=500) == events
    assert await read_all(client, "events", read, type="Refund") == []
    assert await read_all(client, "events", read, correlation_id=events[0]["correlation_id"]) == events[:1]
    middle = events[2]["time"]
    later = await read_all(client, "events", read, since=middle)
    assert [e["id"] for e in later] == [e["id"] for e in events if e["time"] >= middle]
    naive = middle.replace("+00:00", "")  # a time without an offset is UTC
    assert await read_all(client, "events", read, since=naive) == later

    runs = await read_all(client, "runs", read, limit=3)
    assert len(runs) == 7 + 6  # Intake per message (p3 failed), Book per event
    assert "steps" not in runs[0] and all(a["id"] > b["id"] for a, b in itertools.pairwise(runs))
    failed = await read_all(client, "runs", read, status="failed")
    assert [(r["flow"], r["trigger"]) for r in failed] == [("Intake", "message")]
    booked = await read_all(client, "runs", read, flow="Book", handler="book", trigger="handler")
    assert sorted(r["inputs"]["Id"] for r in booked) == ["p0", "p1", "p2", "p4", "p5", "p6"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "cursor=not-an-id",
        "status=sleeping",
        "since=yesterday",
        "type=",
        "since=0001-01-01T00:00:00%2B05:00",
    ],
)
async def test_list_queries_out_of_bounds_are_422_naming_the_parameter(api, query):
    client, tokens, _ = api
    answer = await client.get(
        f"/v1/projects/shop/events?{query}".replace("events?status", "runs?status"), headers=auth(tokens[Scope.READ])
    )
    assert answer.status_code == 422, answer.text
    assert query.split("=")[0] in str(answer.json()["issues"])


@pytest.mark.parametrize("since", ["2026-01-01T00:00:00%2B99:00", "0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z"])
async def test_a_time_that_cannot_be_is_refused_in_flowbus_words(api, since):
    client, tokens, _ = api
    answer = await client.get(f"/v1/projects/shop/events?since={since}", headers=auth(tokens[Scope.READ]))
    assert answer.status_code == 422, answer.text
    said = answer.json()["error"]
    assert said.startswith("since is not a valid time: '")
    assert "names no real date and time" in said or "write it as ISO 8601, such as 2026-11-22T10:00:00Z" in said
    assert "timedelta" not in said and "out of range" not in said
