"""The dashboard and the API before anyone signs in: forged cookies, made-up projects and large
forms end in a refusal, never a 500, an opened database or an unbounded read."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

pytest.importorskip("jinja2", reason="the server extra is not installed")

from flowbus.api import create_app
from flowbus.api.dashboard.session import COOKIE
from flowbus.publishing import publish_config
from flowbus.stores.sqlite import SqliteBackend

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()


@pytest.fixture
async def app_and_client(tmp_path):
    store = SqliteBackend(tmp_path / "flowbus.db", "compass")
    await publish_config(store, COMPASS, file="flowbus.yaml")
    await store.close()
    app = create_app(f"sqlite:///{tmp_path / 'flowbus.db'}")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        yield app, client


def cookie_of(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + ".not-a-signature"


async def test_a_cookie_nesting_deeper_than_json_may_is_no_session_not_a_500(app_and_client):
    _, client = app_and_client
    page = await client.get("/p/compass/", headers={"Cookie": f"{COOKIE}={cookie_of(b'[' * 1000 + b']' * 1000)}"})
    assert page.status_code == 303 and page.headers["location"].startswith("/")


async def test_forged_cookies_and_keys_naming_made_up_projects_open_no_backend(app_and_client):
    app, client = app_and_client
    for n in range(3):
        forged = cookie_of(f'["made{n}", "000000000000", "nonce", 9999999999]'.encode())
        assert (await client.get(f"/p/made{n}/", headers={"Cookie": f"{COOKIE}={forged}"})).status_code == 303
        refused = await client.get(f"/v1/projects/other{n}/events", headers={"Authorization": "Bearer fbk_0000_x"})
        assert refused.status_code == 401
    assert sorted(app.state.flowbus.backends()) == ["default"]


async def test_the_sign_in_form_is_read_only_up_to_its_limit(app_and_client):
    _, client = app_and_client
    form = {"content-type": "application/x-www-form-urlencoded"}
    refused = await client.post("/signin", content=b"key=" + b"k" * 100_000, headers=form)
    assert (refused.status_code, refused.json()) == (413, {"error": "the body is 100,004 bytes; the limit is 16,384"})


async def test_a_405_on_a_dashboard_page_allows_what_its_route_takes(app_and_client):
    _, client = app_and_client
    answer = await client.delete("/p/compass/runs")
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET, HEAD")
