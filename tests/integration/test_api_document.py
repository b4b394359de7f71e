"""The OpenAPI document and the code agree: what the document calls valid is served, what the
code refuses by a rule the document can state, the document states, and a 405's Allow names the
methods the document lists for the path."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount

from flowbus.api import create_app
from flowbus.api.reads import _utc
from flowbus.keys import Scope

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()
PROJECT = "/v1/projects/{project}"


@pytest.fixture
async def api(serve_api):
    async with serve_api("compass", COMPASS, scopes=(Scope.ADMIN, Scope.READ)) as (client, auth, _):
        document = (await client.get("/openapi.json")).json()
        yield client, auth, document


def documented_time_pattern() -> str:
    """The pattern the document states for a time parameter (the FastAPI app's, behind the ingest app)."""
    app = create_app(f"sqlite:///{tempfile.mkdtemp()}/flowbus.db")
    [behind] = [route.app for route in app.routes if isinstance(route, Mount)]
    [since] = [p for p in behind.openapi()["paths"][f"{PROJECT}/events"]["get"]["parameters"] if p["name"] == "since"]
    return str(since["schema"]["pattern"])


def schema_of(document, ref: str):
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "PUT", "DELETE"])
async def test_a_405_of_redrive_allows_what_the_document_lists_for_its_path(api, method):
    client, admin, document = api
    listed = {m.upper() for m in document["paths"][f"{PROJECT}/dead-letters/redrive"]}
    answer = await client.request(method, "/v1/projects/compass/dead-letters/redrive", headers=admin)
    assert (answer.status_code, answer.headers["allow"]) == (405, ", ".join(sorted(listed)))
    assert listed == {"POST"}


async def test_a_dead_letter_path_that_is_not_an_id_still_reaches_its_handler(api):
    client, admin, document = api
    [parameter] = [p for p in document["paths"][f"{PROJECT}/dead-letters/{{message_id}}"]["get"]["parameters"]
                   if p["name"] == "message_id"]  # fmt: skip
    assert parameter["schema"]["pattern"].startswith("^[0-9a-f]{8}-")
    assert (await client.get("/v1/projects/compass/dead-letters/redrives")).status_code == 401
    refused = await client.get("/v1/projects/compass/dead-letters/redrives", headers=admin)
    assert refused.status_code == 422 and "path.message_id" in refused.text
    missing = await client.get("/v1/projects/compass/dead-letters/0190a0a0-0000-7000-8000-000000000000", headers=admin)
    assert missing.status_code == 404 and "no dead letter" in missing.json()["error"]


@pytest.mark.parametrize(
    "since",
    [
        "2024-02-29T00:00:00Z", "2000-02-29T12:00:00", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-12-31T23:59:59.5+01:00", "0000-00-00T00:00:00", "2026-11-22T10:00:0\u0660",
        "0001-01-01T00:00:00-05:00", "0001-01-01T23:00:00+05:00", "0001-01-01T00:00:00+00:00",
        "9999-12-31T20:00:00+05:00", "9999-12-31T20:00:00-05:00",
    ],
)  # fmt: skip
async def test_a_time_is_served_exactly_when_the_documents_pattern_allows_it(api, since):
    client, admin, document = api
    [parameter] = [p for p in document["paths"][f"{PROJECT}/events"]["get"]["parameters"] if p["name"] == "since"]
    documented = re.search(parameter["schema"]["pattern"], since) is not None
    answer = await client.get("/v1/projects/compass/events", params={"since": since}, headers=admin)
    assert (answer.status_code == 200) is documented, answer.text
    assert answer.status_code in (200, 422)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.from_regex(documented_time_pattern(), fullmatch=True))
def test_every_time_the_document_allows_is_taken(since):
    assert _utc(since, "since") is not None


async def test_the_document_says_a_match_names_a_source_or_an_event(api):
    client, admin, document = api
    body = document["paths"][f"{PROJECT}/match"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    variants = schema_of(document, body["$ref"])["anyOf"]
    assert [v["required"] for v in variants] == [["source"], ["event"]]
    assert all(v["properties"][v["required"][0]] == {"type": "string"} for v in variants)
    nulls = {"source": None, "event": None, "event_type": None, "data": {}}
    assert (await client.post("/v1/projects/compass/match", json=nulls, headers=admin)).status_code == 422


async def test_a_match_whose_type_is_not_found_runs_nothing(api):
    client, admin, _ = api
    body = {"source": "compass_inbound", "data": {"no": "event"}}
    answer = await client.post("/v1/projects/compass/match", json=body, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"source": "compass_inbound", "event_type": None, "flows": []}


async def test_the_document_says_a_draft_is_not_empty(api):
    client, admin, document = api
    body = document["paths"][f"{PROJECT}/draft"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema_of(document, body["$ref"])["properties"]["text"]["minLength"] == 1
    refused = await client.put("/v1/projects/compass/draft", json={"text": ""}, headers=admin)
    assert refused.status_code == 422 and "body.text" in refused.text


async def test_the_document_says_an_entity_filter_is_not_repeated(api):
    client, admin, document = api
    parameters = document["paths"][f"{PROJECT}/entities/{{entity}}"]["get"]["parameters"]
    [where] = [p for p in parameters if p["name"] == "where"]
    assert where["schema"]["uniqueItems"] is True
    repeated = await client.get("/v1/projects/compass/entities/company?where=a=1&where=a=1", headers=admin)
    assert repeated.status_code == 422
