"""schemathesis against the app's own OpenAPI: no 5xx and no response that breaks the schema,
whatever the generated requests (with a valid admin key, so they reach the handlers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance  # noqa: E402

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
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(f"sqlite:///{DB}"))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_own_schema_and_never_answers_5xx(case):
    case.path_parameters = {**(case.path_parameters or {}), "project": "compass"}
    if "source" in case.path_parameters:  # a declared source, so that bodies reach the ingress itself
        case.path_parameters["source"] = "compass_inbound"
    # excluded: a body can be of the right shape yet mean nothing (an empty config, a match naming
    # neither source nor event): a 422 then is the right answer, not a failure; and a 405's Allow
    # names every method that routes, where the document cannot: GET /dead-letters/redrive is a
    # GET of /dead-letters/{id} (a dead letter named 'redrive'), beside the POST of redrive
    excluded = [allow_header_conformance, positive_data_acceptance]
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=excluded)
