"""The HTTP ingress in-process (httpx over ASGI) on a real SQLite file: auth, types, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from flowbus.api import create_app
from flowbus.api.state import KEY_TTL_S
from flowbus.keys import Scope, new_key, parse_token
from flowbus.publishing import publish_config
from flowbus.stores.sqlite import SqliteBackend

COMPASS = Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml"
URL = "/v1/projects/compass/sources/compass_inbound/events"
PAYLOAD = {"event": "upsert_company", "payload": {"domain": "acme.example", "name": "Acme"}}


@pytest.fixture
async def api(tmp_path):
    db = tmp_path / "flowbus.db"
    compass = SqliteBackend(db, "compass")
    await publish_config(compass, COMPASS.read_text(), file=str(COMPASS))
    tokens = {}
    for name, scopes in (("ingest", (Scope.INGEST,)), ("read", (Scope.READ,)), ("admin", (Scope.ADMIN,))):
        key, tokens[name] = new_key("compass", name, scopes)
        await compass.add_key(key)
    other = SqliteBackend(db, "crm")
    key, tokens["other project"] = new_key("crm", "crm", (Scope.INGEST,))
    await other.add_key(key)
    app = create_app(f"sqlite:///{db}", max_body_bytes=1024)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowbus") as client:
            yield client, tokens, compass
    await compass.close()
    await other.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_payload_is_queued_with_the_type_its_source_path_finds(api):
    client, tokens, store = api
    response = await client.post(URL, json=PAYLOAD, headers=bearer(tokens["ingest"]))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["event_type"] == "upsert_company"
    message = await store.get_message(body["message_id"])
    assert message.body["type"] == "upsert_company" and message.body["data"] == PAYLOAD


async def test_the_type_header_is_the_fallback_and_no_type_is_a_422_saying_where_it_looked(api):
    client, tokens, _ = api
    headers = bearer(tokens["ingest"])
    assert (await client.post(URL, json={"x": 1}, headers={**headers, "X-Event-Type": "t"})).json()["event_type"] == "t"
    response = await client.post(URL, json={"x": 1}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == (
        "no event type: the source's event_type_from $.event found nothing, and no X-Event-Type header was sent"
    )


async def test_idempotency_key_deduplicates_and_group_key_groups(api):
    client, tokens, store = api
    headers = {**bearer(tokens["ingest"]), "Idempotency-Key": "order-1", "X-Group-Key": "acme"}
    first = (await client.post(URL, json=PAYLOAD, headers=headers)).json()["message_id"]
    again = (await client.post(URL, json=PAYLOAD, headers=headers)).json()["message_id"]
    assert first == again
    message = await store.get_message(first)
    assert (message.dedup_id, message.group_key) == ("order-1", "acme")


@pytest.mark.parametrize(
    ("who", "status", "error"),
    [
        (None, 401, "an API key is required"),
        ("garbage", 401, "not a flowbus API key"),
        ("read", 403, "lacks the ingest scope"),
        ("other project", 403, "belongs to another project"),
        ("admin", 202, None),
    ],
)
async def test_keys_are_checked_for_scope_and_project(api, who, status, error):
    client, tokens, _ = api
    headers = {} if who is None else bearer(tokens.get(who, "fbk_nope"))
    response = await client.post(URL, json=PAYLOAD, headers=headers)
    assert response.status_code == status
    if error:
        assert error in response.json()["error"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_key_is_refused_within_the_key_cache_time(api):
    client, tokens, store = api
    assert (await client.post(URL, json=PAYLOAD, headers=bearer(tokens["ingest"]))).status_code == 202
    await store.revoke_key(parse_token(tokens["ingest"])[0])
    await asyncio.sleep(KEY_TTL_S)  # the cached record has expired by now
    response = await client.post(URL, json=PAYLOAD, headers=bearer(tokens["ingest"]))
    assert response.status_code == 401 and "revoked" in response.json()["error"]


async def test_bodies_are_bounded_and_must_be_json(api):
    client, tokens, _ = api
    headers = bearer(tokens["ingest"])
    big = await client.post(URL, content=b"[" + b"1," * 2000 + b"1]", headers=headers)
    assert big.status_code == 413
    assert big.json()["error"] == "the body is 4,003 bytes; the limit is 1,024"
    deep = await client.post(URL, content=b"[" * 100 + b"]" * 100, headers=headers)
    assert deep.status_code == 422 and "deeper than 64" in deep.json()["error"]
    broken = await client.post(URL, content=b"{nope", headers=headers)
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Group-Key", "X-Event-Type", "ce-id"])
async def test_headers_that_become_keys_are_bounded(api, header):
    client, tokens, compass = api
    headers = {**bearer(tokens["ingest"]), header: "k" * 513}
    refused = await client.post(URL, json={"event": "upsert_company", "payload": {}}, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["error"] == f"header {header.lower()} is 513 characters long; the limit is 512"
    assert await compass.queue_depth() == {}
    headers[header] = "k" * 512
    assert (await client.post(URL, json={"event": "upsert_company", "payload": {}}, headers=headers)).status_code == 202


async def test_unknown_sources_and_projects_without_a_config_are_named(api):
    client, tokens, _ = api
    response = await client.post("/v1/projects/compass/sources/nope/events", json={}, headers=bearer(tokens["ingest"]))
    assert response.status_code == 404 and response.json()["sources"] == ["compass_inbound"]
    response = await client.post("/v1/projects/crm/sources/s/events", json={}, headers=bearer(tokens["other project"]))
    assert response.status_code == 409 and "has no published config" in response.json()["error"]


UNDECLARED = """
project: {name: compass}
targets: [{name: hubspot, type: store, keys: {company: domain}}]
flows:
  - name: upsert
    source: compass_inbound
    event_type: upsert_company
    steps: [{id: save, action: upsert, target: hubspot, entity: company, data: "$.payload"}]
"""


async def test_a_source_no_flow_names_is_a_404_even_when_the_config_declares_no_sources(api):
    client, tokens, compass = api
    await publish_config(compass, UNDECLARED, file="undeclared.yaml")
    typo = "/v1/projects/compass/sources/compas_inbound/events"
    response = await client.post(typo, json=PAYLOAD, headers=bearer(tokens["ingest"]))
    assert response.status_code == 404, response.text
    assert (
        response.json()["error"] == "project 'compass' has no source 'compas_inbound'; did you mean 'compass_inbound'?"
    )
    assert response.json()["sources"] == ["compass_inbound"]
    assert await compass.queue_depth() == {}
    headers = {**bearer(tokens["ingest"]), "X-Event-Type": "upsert_company"}
    assert (await client.post(URL, json=PAYLOAD, headers=headers)).status_code == 202


async def test_health_and_readiness(api):
    client, _, _ = api
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_a_lone_surrogate_is_a_400_naming_where_and_its_neighbours_are_queued(api):
    client, tokens, store = api
    headers = {**bearer(tokens["ingest"]), "Content-Type": "application/json"}
    bad = b'{"event": "upsert_company", "payload": {"domain": "x", "name": "\\ud800"}}'
    good = [{"event": "upsert_company", "payload": {"domain": f"d{n}.example"}} for n in range(39)]
    answers = await asyncio.gather(
        client.post(URL, content=bad, headers=headers),
        *(client.post(URL, json=body, headers=bearer(tokens["ingest"])) for body in good),
    )
    assert answers[0].status_code == 400
    assert answers[0].json()["error"] == "$.payload.name holds a lone surrogate, which is not a character"
    assert [a.status_code for a in answers[1:]] == [202] * 39
    assert sum((await store.queue_depth()).values()) == 39


@pytest.mark.parametrize(
    ("content_type", "body", "status", "error"),
    [
        ("text/plain", b'{"event": "upsert_company"}', 415,
         "the body must be JSON (Content-Type: application/json), not 'text/plain'"),
        ("application/json; charset=utf-16", b'{"event": "upsert_company"}', 415,
         "JSON is read as UTF-8; the charset 'utf-16' is not supported"),
        ("application/json", '{"event": "upsert_company"}'.encode("utf-16"), 400,
         "the JSON is not UTF-8: byte 0xff at offset 0"),
        ("application/json", b'{"event": "upsert_company", "event": "poison"}', 422,
         "not valid JSON: the key 'event' appears twice in one object"),
        ("application/json", b'{"event": "' + b"t" * 1000 + b'"}', 422,
         "the event type found in the body is 1,000 characters long; the limit is 512"),
        ("application/json", b"[" * 500 + b"]" * 500, 422, "JSON nests deeper than 64 levels"),
    ],
)  # fmt: skip
async def test_a_body_that_is_not_plain_utf8_json_is_refused_with_its_reason(api, content_type, body, status, error):
    client, tokens, store = api
    headers = {**bearer(tokens["ingest"]), "Content-Type": content_type}
    refused = await client.post(URL, content=body, headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (status, error)
    assert await store.queue_depth() == {}


@pytest.mark.parametrize("content_type", [None, "application/json", "application/json; charset=UTF-8",
                                          "application/vnd.compass+json"])  # fmt: skip
async def test_json_is_taken_with_no_content_type_or_any_json_media_type(api, content_type):
    client, tokens, _ = api
    headers = bearer(tokens["ingest"]) | ({"Content-Type": content_type} if content_type else {})
    body = b'{"event": "upsert_company", "payload": {"domain": "caf\xc3\xa9.example"}}'
    assert (await client.post(URL, content=body, headers=headers)).status_code == 202


async def test_an_unknown_key_id_and_a_wrong_secret_get_the_same_answer(api):
    client, tokens, _ = api
    _, key_id, secret = tokens["ingest"].split("_", 2)
    unknown = await client.post(URL, json=PAYLOAD, headers=bearer(f"fbk_{'0' * len(key_id)}_{secret}"))
    wrong = await client.post(URL, json=PAYLOAD, headers=bearer(f"fbk_{key_id}_{'0' * len(secret)}"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
