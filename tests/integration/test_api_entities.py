"""Entity records over HTTP, on SQLite and PostgreSQL: what upsert steps wrote, listed in key
order with field filters and cursor pages, and read one by one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from flowbus import jsonio
from flowbus.api import create_app
from flowbus.engine import Engine
from flowbus.keys import Scope, new_key
from flowbus.publishing import active_config, publish_config
from flowbus.stores import open_backend

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()


@pytest.fixture(params=["sqlite", "postgres"])
async def api(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'flowbus.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    store = open_backend(url, "compass")
    await publish_config(store, COMPASS, file="flowbus.yaml")
    tokens = {}
    for scope in (Scope.INGEST, Scope.READ):
        key, tokens[scope] = new_key("compass", str(scope), (scope,))
        await store.add_key(key)
    app = create_app(url)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        yield client, tokens, store
    await store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upsert(api, *companies: dict) -> None:
    """Send each company through the compass source, then run what was queued."""
    client, tokens, store = api
    for company in companies:
        answer = await client.post(
            "/v1/projects/compass/sources/compass_inbound/events",
            content=jsonio.dumps({"event": "upsert_company", "payload": company}),
            headers={**auth(tokens[Scope.INGEST]), "content-type": "application/json"},
        )
        assert answer.status_code == 202, answer.text
    number, loaded = await active_config(store)
    await Engine(loaded, backend=store, config_version=number).drain()


async def read_all(client, token, **params):
    """Every record of the company list, following next_cursor page by page."""
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/v1/projects/compass/entities/company", params=query, headers=auth(token))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_records_upserts_wrote_are_listed_in_key_order_filtered_and_paged(api):
    client, tokens, _ = api
    await upsert(
        api,
        *({"domain": f"{name}.example", "size": size, "country": country} for name, size, country in (
            ("delta", 50, "DE"), ("acme", 1200, "US"), ("echo", 50, "US"), ("bravo", 7, "DE"), ("charlie", 50, "FR"),
        )),
    )  # fmt: skip
    await upsert(api, {"domain": "echo.example", "name": "Echo", "price": Decimal("19.90")})  # merged: version 2
    read = tokens[Scope.READ]

    records = await read_all(client, read, limit=2)
    assert [r["key"] for r in records] == [f"{n}.example" for n in ("acme", "bravo", "charlie", "delta", "echo")]
    assert records[-1] == {
        "key": "echo.example",
        "version": 2,
        "data": {"domain": "echo.example", "size": 50, "country": "US", "name": "Echo", "price": 19.90},
    }
    assert await read_all(client, read, limit=500) == records
    echo = await client.get("/v1/projects/compass/entities/company/echo.example", headers=auth(read))
    assert echo.json() == records[-1] and '"price":19.90' in echo.text  # exact, as sent
    by_filter = {
        ("size=50",): ["charlie", "delta", "echo"],
        ("size=50", "country=US"): ["echo"],
        ("price=19.90",): ["echo"],  # a decimal as it was sent
        ("price=19.9",): [],
        ("country=de",): [],
        ("nothing=50",): [],
    }
    for where, names in by_filter.items():
        found = await read_all(client, read, where=list(where), limit=1)
        assert [r["key"] for r in found] == [f"{n}.example" for n in names], where
    assert await read_all(client, read, cursor="charlie.example") == records[3:]


async def test_a_record_is_read_by_its_key_and_a_missing_one_is_404_in_flowbus_words(api):
    client, tokens, _ = api
    await upsert(api, {"domain": "acme.example/eu", "name": "Acme EU"})
    read = auth(tokens[Scope.READ])
    for path in ("acme.example/eu", "acme.example%2Feu"):  # a slash in a key, as it is or escaped
        answer = await client.get(f"/v1/projects/compass/entities/company/{path}", headers=read)
        assert answer.json() == {
            "key": "acme.example/eu",
            "version": 1,
            "data": {"domain": "acme.example/eu", "name": "Acme EU"},
        }
    missing = await client.get("/v1/projects/compass/entities/company/nope.example", headers=read)
    assert missing.status_code == 404
    assert missing.json() == {"error": "no company record 'nope.example' in project 'compass'"}
    other_entity = await client.get("/v1/projects/compass/entities/person/acme.example%2Feu", headers=read)
    assert other_entity.status_code == 404


@pytest.mark.parametrize("path", ["entities/company", "entities/company/acme.example"])
async def test_entity_reads_need_the_read_scope(api, path):
    client, tokens, _ = api
    refused = await client.get(f"/v1/projects/compass/{path}", headers=auth(tokens[Scope.INGEST]))
    assert refused.status_code == 403 and "lacks the read scope" in refused.json()["error"]
    assert (await client.get(f"/v1/projects/compass/{path}")).status_code == 401


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("where=size", "query.where"),
        ("where==50", "query.where"),
        ("where=size=1&where=size=2", "the field 'size' is filtered twice"),
        ("&".join(f"where=f{n}=1" for n in range(9)), "at most 8 items"),
        ("cursor=", "query.cursor"),
        ("limit=0", "query.limit"),
    ],
)
async def test_entity_list_queries_out_of_bounds_are_422_saying_why(api, query, says):
    client, tokens, _ = api
    answer = await client.get(f"/v1/projects/compass/entities/company?{query}", headers=auth(tokens[Scope.READ]))
    assert answer.status_code == 422 and says in answer.text, answer.text


async def test_an_entity_name_that_no_step_could_write_is_422(api):
    client, tokens, _ = api
    answer = await client.get("/v1/projects/compass/entities/com-pany", headers=auth(tokens[Scope.READ]))
    assert answer.status_code == 422 and "path.entity" in answer.text
