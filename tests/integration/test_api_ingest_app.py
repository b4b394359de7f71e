"""The ingest app in front of the FastAPI app: what it queues carries the active config version,
the API behind still answers for the ingest paths' other methods, and the OpenAPI document
describes the ingest operations from their models."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")


COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()
SOURCE_URL = "/v1/projects/compass/sources/compass_inbound/events"
PAYLOAD = {"event": "upsert_company", "payload": {"domain": "acme.example", "name": "Acme"}}


@pytest.fixture
async def api(serve_api):
    # a second version, so that the version a message carries is not the first by chance
    async with serve_api("compass", COMPASS, COMPASS.replace("Raw webhooks", "Raw hooks")) as served:
        yield served


async def test_a_source_message_carries_the_active_config_version(api):
    client, auth, store = api
    sent = await client.post(SOURCE_URL, json=PAYLOAD, headers=auth)
    assert sent.status_code == 202, sent.text
    assert (await store.get_message(sent.json()["message_id"])).config_version == 2


async def test_other_methods_of_the_ingest_paths_are_answered_by_the_api_behind(api):
    client, auth, _ = api
    refused = await client.get(SOURCE_URL, headers=auth)
    assert (refused.status_code, refused.headers["allow"], refused.json()) == (
        405, "POST", {"error": "Method Not Allowed"},
    )  # fmt: skip
    read = await client.get("/v1/projects/compass/events", headers=auth)  # a read, refused to an ingest key
    assert read.status_code == 403 and "lacks the read scope" in read.json()["error"]


async def test_the_document_describes_the_ingest_operations_from_their_models(api):
    client, _, _ = api
    document = (await client.get("/openapi.json")).json()
    source = document["paths"]["/v1/projects/{project}/sources/{source}/events"]["post"]
    assert source["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SourceAccepted"
    }
    assert {"413", "415", "401", "422"} <= set(source["responses"])
    assert {p["name"] for p in source["parameters"]} == {
        "project", "source", "x-event-type", "idempotency-key", "x-group-key",
    }  # fmt: skip
    cloudevents = document["paths"]["/v1/projects/{project}/events"]["post"]
    content = cloudevents["requestBody"]["content"]
    assert content["application/cloudevents+json"]["schema"]["required"] == ["specversion", "id", "source", "type"]
    assert content["application/cloudevents-batch+json"]["schema"]["maxItems"] == 1000
    assert "CloudEventsAccepted" in document["components"]["schemas"]
    assert "get" in document["paths"]["/v1/projects/{project}/events"]  # the read beside it
