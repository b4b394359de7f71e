"""schemathesis against the app's own OpenAPI, every check: no 5xx, no response that breaks the
schema, no request the document calls valid refused (but where the test says why), and a 405's
Allow naming the methods the document lists, whatever the generated requests (with a valid admin
key, so they reach the handlers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from flowbus.api import create_app  # noqa: E402
from flowbus.keys import Scope, new_key  # noqa: E402
from flowbus.publishing import publish_config  # noqa: E402
from flowbus.stores.sqlite import SqliteBackend  # noqa: E402

COMPASS = (Path(__file__).resolve().parents[2] / "examples" / "compass" / "flowbus.yaml").read_text()


def _prepared(path: Path) -> str:
    async def prepare() -> str:
        store = SqliteBackend(path, "compass")
        await publish_config(store, COMPASS, file="flowbus.yaml")
        key, token = new_key("compass", "schemathesis", (Scope.ADMIN,))
        await store.add_key(key)
        await store.close()
        return token

    return asyncio.run(prepare())


DB = Path(__import__("tempfile").mkdtemp()) / "flowbus.db"
TOKEN = _prepared(DB)

#: where a request of the documented shape may yet be refused by design, for a reason no static
#: document can state: it depends on the project's config (which event types a source's payloads
#: name, which events are defined, whether a text is a valid config: 422), on two items of one
#: list (a field filtered twice, with two values: 422), or on a header and the media type at once
#: (a JSON body without the ce-* attributes of binary mode: 415). Everywhere else, valid data is
#: accepted: the document says what the code refuses.
REFUSED_BY_DESIGN = {
    "POST /v1/projects/{project}/sources/{source}/events": [422],
    "POST /v1/projects/{project}/events": [415, 422],
    "PUT /v1/projects/{project}/draft": [422],
    "GET /v1/projects/{project}/entities/{entity}": [422],
}
#: schemathesis's own default for the check
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {"include-name": name, "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, *also]}}}
            for name, also in REFUSED_BY_DESIGN.items()
        ]
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(f"sqlite:///{DB}"), config=CONFIG)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_own_schema_and_never_answers_5xx(case):
    case.path_parameters = {**(case.path_parameters or {}), "project": "compass"}
    if "source" in case.path_parameters:  # a declared source, so that bodies reach the ingress itself
        case.path_parameters["source"] = "compass_inbound"
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"})
