"""Arbitrary bytes, headers and JSON at every ingest and admin route, on SQLite and PostgreSQL:
whatever arrives, the answer is flowbus's own 2xx or 4xx, never a 5xx, and the API answers the
next request as before."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="the server extra is not installed")

from flowbus.api import create_app
from flowbus.keys import Scope, new_key
from flowbus.publishing import publish_config
from flowbus.stores import open_backend

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()
#: examples per route and backend: raise it for a longer soak (FLOWBUS_FUZZ_EXAMPLES=5000)
EXAMPLES = int(os.environ.get("FLOWBUS_FUZZ_EXAMPLES", "60"))

ROUTES = [
    ("POST", "/v1/projects/compass/sources/compass_inbound/events"),
    ("POST", "/v1/projects/compass/sources/compas_inbound/events"),
    ("POST", "/v1/projects/compass/events"),
    ("PUT", "/v1/projects/compass/draft"),
    ("POST", "/v1/projects/compass/publish"),
    ("POST", "/v1/projects/compass/dead-letters/redrive"),
    ("POST", "/v1/projects/compass/match"),
    ("POST", "/v1/projects/compass/purge"),
]

# text that has broken JSON handling somewhere: lone surrogates, escapes, huge numbers, deep nesting
nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u2028", "é", "😀", "$", "=1/0", "\\", '"']),
)
hostile_configs = [
    COMPASS + "retention: {runs: " + "9" * 5000 + "}\n",
    '{"project": {"name": "compass"}, "n": ' + "9" * 5000 + "}",
    "a: " + "[" * 3000 + "]" * 3000,
    "a: &a [x, x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(20)),
    COMPASS + "retention: {runs: 1e999999}\n",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)


def _encoded(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


raw_bodies = st.one_of(
    json_values.map(_encoded),  # \u escapes, so lone surrogates arrive as JSON says them
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=4000, max_value=6000).map(lambda n: b"1" * n),
    st.sampled_from([b'{"event": "upsert_company", "event": "x"}', b"", b"null", b'{"text": ""}', b'{"ids": [null]}']),
    st.fixed_dictionaries(
        {"specversion": st.just("1.0"), "id": nasty_text, "source": nasty_text, "type": nasty_text, "data": json_values}
    ).map(_encoded),
    st.fixed_dictionaries({"text": nasty_text}).map(_encoded),
    # config texts that a YAML or JSON reader may choke on: a huge integer, deep nesting, a bomb
    st.fixed_dictionaries({"text": st.sampled_from(hostile_configs)}).map(_encoded),
    st.fixed_dictionaries({"dry_run": json_values, "before": nasty_text, "what": json_values}).map(_encoded),
    st.fixed_dictionaries({"ids": st.lists(nasty_text, max_size=3)}).map(_encoded),
    st.fixed_dictionaries({"source": nasty_text, "event_type": nasty_text, "data": json_values}).map(_encoded),
)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40) | st.sampled_from(
    ["k" * 600, "application/json; charset=utf-16", "application/cloudevents+json", "text/plain", ""]
)
headers = st.dictionaries(
    st.sampled_from([
        "content-type", "x-event-type", "idempotency-key", "x-group-key", "ce-specversion", "ce-id", "ce-source",
        "ce-type", "ce-subject", "ce-eventversion",
    ]),
    header_values,
    max_size=5,
)  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
async def api(request, tmp_path):
    """The whole app on a real database, with an admin key (so requests reach the handlers)."""
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path / 'flowbus.db'}"
    else:
        db = request.getfixturevalue("postgres_url")
    store = open_backend(db, "compass")
    await publish_config(store, COMPASS, file="flowbus.yaml")
    key, token = new_key("compass", "fuzz", (Scope.ADMIN,))
    await store.add_key(key)
    await store.close()
    app = create_app(db, max_body_bytes=16 * 1024)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        yield client, {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), ROUTES)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=raw_bodies, extra=headers)
async def test_no_request_body_or_header_gets_a_5xx(api, method, path, body, extra):
    client, auth = api
    answer = await client.request(method, path, content=body, headers={**extra, **auth})
    assert answer.status_code < 500, (answer.status_code, answer.text, body[:200], extra)
    if answer.status_code >= 400:
        assert answer.json()["error"], answer.text  # a reason, in flowbus's shape
