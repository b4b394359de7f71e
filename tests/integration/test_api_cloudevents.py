"""CloudEvents at the ingress, sent by the cloudevents SDK as an independent client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
pytest.importorskip("cloudevents.core", reason="the cloudevents SDK (2.x) is a test dependency")

from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from flowbus.api.cloudevents import MAX_BATCH
from flowbus.engine import Engine
from flowbus.publishing import active_config
from flowbus.stores.sqlite import SqliteBackend

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "flowbus.yaml"
CONFIG = SHOP.read_text().replace("mode: sync", "mode: async")  # no stock to seed: keep it about ingress
URL = "/v1/projects/shop/events"


def event(event_id: str, **overrides) -> CloudEvent:
    data = {
        "OrderId": f"o-{event_id}", "CustomerId": "c1", "OrderNumber": f"SO-{event_id}",
        "TotalAmount": "19.90", "OrderDate": "2026-11-22T10:00:00Z", **overrides,
    }  # fmt: skip
    attributes = {"type": "OrderPlaced", "source": "storefront", "id": event_id, "specversion": "1.0",
                  "datacontenttype": "application/json"}  # fmt: skip
    return CloudEvent(attributes=attributes, data=data)


@pytest.fixture
async def api(serve_api):
    async with serve_api("shop", CONFIG) as served:
        yield served


async def publish_queued(store: SqliteBackend) -> list:
    number, loaded = await active_config(store)
    return await Engine(loaded, backend=store, config_version=number).drain()


async def test_structured_binary_and_batch_modes_are_accepted_and_traced(api):
    client, auth, store = api
    structured = to_structured(event("e1"), JSONFormat())
    binary = to_binary(event("e2"), JSONFormat())
    batch = b"[" + b",".join(JSONFormat().write(event(i)) for i in ("e3", "e4")) + b"]"
    responses = [
        await client.post(URL, content=structured.body, headers={**auth, **structured.headers}),
        await client.post(URL, content=binary.body, headers={**auth, **binary.headers}),
        await client.post(URL, content=batch, headers={**auth, "content-type": "application/cloudevents-batch+json"}),
    ]
    assert [r.status_code for r in responses] == [202, 202, 202], [r.text for r in responses]
    assert [a["id"] for r in responses for a in r.json()["accepted"]] == ["e1", "e2", "e3", "e4"]
    runs = await publish_queued(store)
    assert await store.count_events() == 4
    # each event's handlers ran (traced, whatever their outcome on this empty store)
    event_ids = {r.event_id for r in runs if r.handler is not None}
    published = {(await store.get_event(event_id)).data["OrderNumber"] for event_id in event_ids}
    assert published == {"SO-e1", "SO-e2", "SO-e3", "SO-e4"}


async def test_a_redelivered_event_is_dropped_by_its_source_and_id(api):
    client, auth, _ = api
    message = to_structured(event("same"), JSONFormat())
    first = await client.post(URL, content=message.body, headers={**auth, **message.headers})
    again = await client.post(URL, content=message.body, headers={**auth, **message.headers})
    assert first.json()["accepted"][0]["message_id"] == again.json()["accepted"][0]["message_id"]


async def test_bad_properties_are_a_422_with_one_entry_per_property(api):
    client, auth, _ = api
    bad = event("bad", TotalAmount="1.234", OrderId=None, Extra=1)
    message = to_structured(bad, JSONFormat())
    response = await client.post(URL, content=message.body, headers={**auth, **message.headers})
    assert response.status_code == 422
    [entry] = response.json()["events"]
    assert entry["id"] == "bad"
    assert set(entry["properties"]) == {"TotalAmount", "OrderId", "Extra"}


async def test_unknown_types_missing_attributes_and_wrong_modes_are_named(api):
    client, auth, _ = api
    unknown = to_structured(
        CloudEvent(attributes={"type": "Nope", "source": "s", "id": "1", "specversion": "1.0"}, data={}), JSONFormat()
    )
    response = await client.post(URL, content=unknown.body, headers={**auth, **unknown.headers})
    assert response.status_code == 422 and "no event 'Nope' is defined" in json.dumps(response.json())
    response = await client.post(
        URL, json={"id": "1"}, headers={**auth, "content-type": "application/cloudevents+json"}
    )
    assert (
        response.status_code == 422
        and "missing or empty attributes: source, specversion, type" in response.json()["error"]
    )
    response = await client.post(URL, json={}, headers=auth)
    assert response.status_code == 415


async def test_a_batch_over_the_event_limit_is_refused_whole(api):
    client, auth, store = api
    small = [{"specversion": "1.0", "id": f"b{i}", "source": "s", "type": "OrderPlaced"} for i in range(MAX_BATCH + 1)]
    too_many = json.dumps(small).encode()  # well under the size limit: the count is what is refused
    headers = {**auth, "content-type": "application/cloudevents-batch+json"}
    response = await client.post(URL, content=too_many, headers=headers)
    assert response.status_code == 422 and "at most 1,000 events, got 1,001" in response.json()["error"]
    assert await store.queue_depth() == {}


@pytest.mark.parametrize("attribute", ["id", "source", "type", "subject"])
async def test_an_attribute_that_becomes_a_key_is_bounded(api, attribute):
    client, auth, store = api
    body = {"specversion": "1.0", "id": "1", "source": "s", "type": "OrderPlaced", attribute: "k" * 513}
    headers = {**auth, "content-type": "application/cloudevents+json"}
    response = await client.post(URL, json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == f"event: {attribute} is 513 characters long; the limit is 512"
    assert await store.queue_depth() == {}


async def test_a_lone_surrogate_in_an_attribute_is_a_400_naming_it(api):
    client, auth, store = api
    body = b'{"specversion": "1.0", "id": "\\ud800", "source": "s", "type": "OrderPlaced", "data": {}}'
    headers = {**auth, "content-type": "application/cloudevents+json"}
    response = await client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "$.id holds a lone surrogate, which is not a character"},
    )
    assert await store.queue_depth() == {}


#: the shop with a second version of OrderPlaced: the first one, and a Channel
V1 = CONFIG[CONFIG.index("  - name: OrderPlaced") : CONFIG.index("\nflows:")].rstrip()
V2 = V1.replace("    properties:", "    version: 2\n    properties:", 1) + "\n      Channel: {type: String}\n"
VERSIONED = CONFIG.replace("\nflows:", f"\n{V2}\nflows:", 1)


def with_version(cloud_event: CloudEvent, version: object) -> dict:
    """A structured CloudEvent as JSON, with the ``eventversion`` extension attribute."""
    return {**json.loads(JSONFormat().write(cloud_event)), "eventversion": version}


STRUCTURED = {"content-type": "application/cloudevents+json"}


async def test_an_eventversion_attribute_picks_the_version_checked_and_published(serve_api):
    async with serve_api("shop", VERSIONED) as (client, auth, store):
        structured = await client.post(URL, json=with_version(event("old"), 1), headers={**auth, **STRUCTURED})
        binary = to_binary(event("new", Channel="web"), JSONFormat())
        by_header = await client.post(
            URL, content=binary.body, headers={**auth, **binary.headers, "ce-eventversion": "2"}
        )
        latest = to_structured(event("latest", Channel="app"), JSONFormat())
        by_default = await client.post(URL, content=latest.body, headers={**auth, **latest.headers})
        assert [r.status_code for r in (structured, by_header, by_default)] == [202, 202, 202]
        await publish_queued(store)
        published = {e.data["OrderNumber"]: e.version for e in await store.list_events()}
        assert published == {"SO-old": 1, "SO-new": 2, "SO-latest": 2}


async def test_properties_are_checked_against_the_version_the_eventversion_names(serve_api):
    async with serve_api("shop", VERSIONED) as (client, auth, _):
        response = await client.post(
            URL, json=with_version(event("e", Channel="web"), 1), headers={**auth, **STRUCTURED}
        )
        assert response.status_code == 422
        assert response.json()["events"][0]["properties"] == {"Channel": "not a declared property"}


async def test_an_eventversion_the_event_does_not_have_or_that_is_no_number_is_a_422(serve_api):
    async with serve_api("shop", VERSIONED) as (client, auth, _):
        unknown = await client.post(URL, json=with_version(event("e"), 3), headers={**auth, **STRUCTURED})
        assert unknown.status_code == 422
        assert unknown.json()["events"][0]["error"] == "event 'OrderPlaced' has no version 3; defined: 1, 2"
        garbled = await client.post(URL, json=with_version(event("e"), "two"), headers={**auth, **STRUCTURED})
        assert garbled.status_code == 422
        assert "eventversion must be a whole number from 1, got 'two'" in garbled.json()["error"]


async def test_an_eventversion_of_thousands_of_digits_is_a_422_not_a_500(api):
    client, auth, store = api
    body = {"specversion": "1.0", "id": "1", "source": "s", "type": "OrderPlaced", "eventversion": "9" * 5000}
    response = await client.post(URL, json=body, headers={**auth, "content-type": "application/cloudevents+json"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("event: eventversion must be a whole number from 1, got '99999")
    assert await store.queue_depth() == {}


@pytest.mark.parametrize("data", ["absent", None])
async def test_an_event_without_data_is_one_without_properties_as_the_document_allows(api, data):
    client, auth, _ = api
    sent = {"specversion": "1.0", "id": "1", "source": "s", "type": "OrderPlaced"}
    if data != "absent":
        sent["data"] = data
    response = await client.post(URL, json=sent, headers={**auth, "content-type": "application/cloudevents+json"})
    assert response.status_code == 422, response.text
    [entry] = response.json()["events"]  # checked as an event with no properties: each required one named
    assert set(entry["properties"]) == {"OrderId", "CustomerId", "OrderNumber", "TotalAmount", "OrderDate"}
    document = (await client.get("/openapi.json")).json()
    content = document["paths"]["/v1/projects/{project}/events"]["post"]["requestBody"]["content"]
    assert "data" not in content["application/cloudevents+json"]["schema"]["required"]
