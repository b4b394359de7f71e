"""Admin over HTTP, and the auth matrix: every route against no key, a key of the wrong scope,
and a key of another project."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.routing import APIRoute
from starlette.routing import Route

from flowbus.api import create_app
from flowbus.api.admin import MAX_BODY_BYTES
from flowbus.keys import Scope, new_key
from flowbus.publishing import publish_config
from flowbus.stores.sqlite import SqliteBackend

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()
OPEN = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect"}


@pytest.fixture
async def api(tmp_path):
    db = tmp_path / "flowbus.db"
    store = SqliteBackend(db, "compass")
    await publish_config(store, COMPASS, file="flowbus.yaml")
    tokens = {}
    for scope in Scope:
        key, tokens[scope] = new_key("compass", str(scope), (scope,))
        await store.add_key(key)
    crm = SqliteBackend(db, "crm")
    key, tokens["other"] = new_key("crm", "admin", (Scope.ADMIN,))
    await crm.add_key(key)
    app = create_app(f"sqlite:///{db}")
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        yield client, tokens, app
    await store.close()
    await crm.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_drafts_publish_versions_diff_rollback_and_the_manifest(api):
    client, tokens, _ = api
    admin = auth(tokens[Scope.ADMIN])
    bad = await client.put("/v1/projects/compass/draft", json={"text": "flows: [{name: f}]"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["issues"][0]["field"] == "flows[0].steps"
    changed = COMPASS.replace("upsert_company\n", "upsert_company\n    enabled: false\n", 1)
    assert (await client.put("/v1/projects/compass/draft", json={"text": changed}, headers=admin)).json() == {
        "saved": True
    }
    assert (await client.get("/v1/projects/compass/draft", headers=admin)).json()["text"] == changed
    published = (await client.post("/v1/projects/compass/publish", headers=admin)).json()
    assert published["version"] == 2 and published["summary"] == "flows: 1 changed"
    versions = (await client.get("/v1/projects/compass/versions", headers=admin)).json()
    assert [(v["number"], v["active"]) for v in versions] == [(1, False), (2, True)]
    diff = (await client.get("/v1/projects/compass/versions/1/diff/2", headers=admin)).json()
    assert diff["changes"][0]["fields"] == ["enabled"]
    assert (await client.get("/v1/projects/compass/versions/1/diff/9", headers=admin)).status_code == 404
    manifest = (await client.get("/v1/projects/compass/manifest", headers=admin)).json()
    assert manifest["version"] == 2 and manifest["routes"] == []  # the only flow is disabled
    rolled = (await client.post("/v1/projects/compass/versions/1/rollback", headers=admin)).json()
    assert rolled["version"] == 3
    manifest = (await client.get("/v1/projects/compass/manifest", headers=admin)).json()
    assert manifest["routes"] == [
        {"source": "compass_inbound", "event_type": "upsert_company", "flows": ["compass_company_upsert"]}
    ]


async def test_a_draft_naming_another_project_is_refused_naming_both(api):
    client, tokens, _ = api
    admin = auth(tokens[Scope.ADMIN])
    foreign = COMPASS.replace("name: compass\n", "name: someoneelse\n", 1)
    refused = await client.put("/v1/projects/compass/draft", json={"text": foreign}, headers=admin)
    assert refused.status_code == 422, refused.text
    said = "the config names project 'someoneelse', but it was sent to project 'compass'"
    assert refused.json()["error"] == f"the config is not valid: {said}"
    assert refused.json()["issues"] == [{"line": 4, "field": "project.name", "message": said}]
    assert (await client.get("/v1/projects/compass/draft", headers=admin)).status_code == 404
    unnamed = COMPASS.replace("  name: compass\n", "", 1)
    assert (await client.put("/v1/projects/compass/draft", json={"text": unnamed}, headers=admin)).status_code == 200
    assert (await client.post("/v1/projects/compass/publish", headers=admin)).json()["version"] == 2


async def test_publishing_refuses_a_config_of_another_project_whoever_publishes_it(tmp_path):
    from flowbus.config import ConfigError

    store = SqliteBackend(tmp_path / "flowbus.db", "compass")
    foreign = COMPASS.replace("name: compass\n", "name: someoneelse\n", 1)
    with pytest.raises(ConfigError, match="names project 'someoneelse', but it was sent to project 'compass'"):
        await publish_config(store, foreign, file="foreign.yaml")
    assert await store.versions() == []
    await store.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/dead-letters/redrive", b'{"ids": ["ok", "\\ud800"]}', "$.ids[1]"),
        ("PUT", "/draft", b'{"text": "flows: []\\udfff"}', "$.text"),
        ("POST", "/match", b'{"source": "s", "event_type": "\\ud800"}', "$.event_type"),
    ],
)
async def test_admin_bodies_with_a_lone_surrogate_are_refused_naming_where(api, method, path, body, where):
    client, tokens, _ = api
    headers = {**auth(tokens[Scope.ADMIN]), "Content-Type": "application/json"}
    refused = await client.request(method, f"/v1/projects/compass{path}", content=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["issues"] == [
        {"where": "body", "message": f"{where} holds a lone surrogate, which is not a character"}
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "said"),
    [
        # FastAPI's reader took the last of two keys: this dry run purged
        ("POST", "/purge", b'{"dry_run": true, "dry_run": false}', "the key 'dry_run' appears twice"),
        ("PUT", "/draft", b'{"text": "' + b"x" * 10 + b'", "text": "flows: []"}', "the key 'text' appears twice"),
        ("POST", "/match", b'{"source": "s", "data": ' + b"[" * 3000 + b"]" * 3000 + b"}", "deeper than 64 levels"),
        ("POST", "/match", b'{"source": "s", "data": ' + b"9" * 5000 + b"}", "a number of 5,000 digits"),
        ("POST", "/dead-letters/redrive", b'{"ids": ["\xff"]}', "not UTF-8"),
        # FastAPI read a model from any object's attributes: a bare decimal, having none of the
        # fields, was a body of all defaults, and this purged
        ("POST", "/purge", b"-6.026835274014447e+30", "the body is a JSON number, not an object"),
        ("POST", "/purge", b"[]", "the body is a JSON array, not an object"),
        ("PUT", "/draft", b'"flows: []"', "the body is a JSON string, not an object"),
        ("POST", "/match", b"true", "the body is a JSON boolean, not an object"),
    ],
)
async def test_admin_bodies_are_read_as_the_ingress_reads_them_and_refused_in_flowbus_words(
    api, method, path, body, said
):
    client, tokens, _ = api
    headers = {**auth(tokens[Scope.ADMIN]), "Content-Type": "application/json"}
    refused = await client.request(method, f"/v1/projects/compass{path}", content=body, headers=headers)
    assert refused.status_code == 422, refused.text
    [issue] = refused.json()["issues"]
    assert issue["where"] == "body" and said in issue["message"], issue


async def test_an_admin_body_is_refused_once_it_passes_its_bound_while_it_is_read(api):
    client, tokens, _ = api
    headers = {**auth(tokens[Scope.ADMIN]), "Content-Type": "application/json"}

    async def endless():  # no Content-Length: the bound is met while reading
        yield b'{"text": "'
        for _ in range(500):
            yield b"x" * 65536

    refused = await client.put("/v1/projects/compass/draft", content=endless(), headers=headers)
    assert refused.status_code == 413
    assert refused.json()["error"] == f"the body is over the limit of {MAX_BODY_BYTES:,} bytes"


async def test_a_config_with_an_integer_past_4300_digits_is_a_draft_refused_at_its_line(api):
    client, tokens, _ = api
    text = COMPASS + "retention: {runs: " + "9" * 5000 + "}\n"
    refused = await client.put("/v1/projects/compass/draft", json={"text": text}, headers=auth(tokens[Scope.ADMIN]))
    assert refused.status_code == 422, refused.text
    assert "a number of 5,000 digits; the limit is 4,300" in refused.text


async def test_match_says_what_would_run_without_running_it(api):
    client, tokens, _ = api
    admin = auth(tokens[Scope.ADMIN])
    found = await client.post(
        "/v1/projects/compass/match",
        json={"source": "compass_inbound", "data": {"event": "upsert_company"}},
        headers=admin,
    )
    assert found.json() == {
        "source": "compass_inbound",
        "event_type": "upsert_company",
        "flows": ["compass_company_upsert"],
    }
    nothing = await client.post(
        "/v1/projects/compass/match", json={"source": "compass_inbound", "event_type": "x"}, headers=admin
    )
    assert nothing.json()["flows"] == []
    assert (await client.post("/v1/projects/compass/match", json={}, headers=admin)).status_code == 422


async def test_dead_letters_are_listed_paged_shown_and_redriven(api, tmp_path):
    client, tokens, _ = api
    admin = auth(tokens[Scope.ADMIN])
    sent = []
    for n in range(3):
        answer = await client.post(
            "/v1/projects/compass/sources/compass_inbound/events",
            json={"event": "upsert_company", "payload": {"name": f"no domain {n}"}},
            headers=auth(tokens[Scope.INGEST]),
        )
        sent.append(answer.json()["message_id"])
    from flowbus.engine import Engine
    from flowbus.publishing import active_config

    store = SqliteBackend(tmp_path / "flowbus.db", "compass")
    number, loaded = await active_config(store)
    await Engine(loaded, backend=store, config_version=number).drain()
    url = "/v1/projects/compass/dead-letters"
    first = (await client.get(url, params={"limit": 2}, headers=admin)).json()
    second = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)).json()
    assert [m["id"] for m in first["items"] + second["items"]] == sent  # oldest first
    assert second["next_cursor"] is None
    assert (await client.get(url, params={"name": "elsewhere"}, headers=admin)).json()["items"] == []

    shown = (await client.get(f"{url}/{sent[0]}", headers=admin)).json()
    assert "needs its key field 'domain'" in shown["errors"][0]["error"]
    assert shown["runs"][0]["status"] == "failed" and shown["runs"][0]["flow"] == "compass_company_upsert"

    redriven = await client.post(f"{url}/redrive", json={"ids": [sent[0]]}, headers=admin)
    assert redriven.json() == {"redriven": 1}
    assert [m["id"] for m in (await client.get(url, headers=admin)).json()["items"]] == sent[1:]
    not_dead = await client.get(f"{url}/{sent[0]}", headers=admin)
    assert not_dead.status_code == 404 and "no dead letter" in not_dead.json()["error"]
    await store.close()


def routes(app) -> list[tuple[str, str, Scope]]:
    from flowbus.api import admin, reads

    found = []
    for route in [*app.routes, *reads.router.routes, *admin.router.routes]:
        if not isinstance(route, Route | APIRoute) or route.path in OPEN:
            continue
        tags = getattr(route, "tags", [])
        scope = Scope.READ if "reads" in tags else Scope.ADMIN if "admin" in tags else Scope.INGEST
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path, scope))
    return found


async def test_every_route_refuses_no_key_a_wrong_scope_and_another_projects_key(api):
    client, tokens, app = api
    checked = 0
    for method, template, scope in routes(app):
        path = re.sub(r"\{(\w+)(?::path)?\}", lambda m: "compass" if m.group(1) == "project" else "1", template)
        wrong = Scope.READ if scope is not Scope.READ else Scope.INGEST
        for headers, status in ((None, 401), (auth(tokens[wrong]), 403), (auth(tokens["other"]), 403)):
            response = await client.request(method, path, json={}, headers=headers)
            assert response.status_code == status, (
                method,
                path,
                headers and headers["Authorization"][:20],
                response.text,
            )
        checked += 1
    assert checked == 22  # 2 ingress, 8 read and 12 admin routes: every route is in the matrix


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/projects/compass/events", "GET, POST"),  # a read and the CloudEvents ingress
        ("PATCH", "/v1/projects/compass/draft", "GET, PUT"),
        ("PUT", "/healthz", "GET, HEAD"),
    ],
)
async def test_a_405_allows_the_methods_of_every_route_of_its_path(api, method, path, allow):
    client, tokens, _ = api
    answer = await client.request(method, path, headers=auth(tokens[Scope.ADMIN]))
    assert (answer.status_code, answer.headers["allow"]) == (405, allow)
