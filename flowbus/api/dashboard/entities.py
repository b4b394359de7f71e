"""Entities: the store browsed by entity and key. Entity names come from the active config (the
entities its steps and store targets name); a key is read from the primary key, and the first
keys of an entity are listed in key order.

Paging past the first keys waits for the entity reads the HTTP API is gaining (a keyset query of
its own); until then the page shows the first :data:`MAX_KEYS` and says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from flowbus.api.dashboard.access import page
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session
from flowbus.api.errors import ApiError
from flowbus.api.state import ApiState
from flowbus.config.model import Config, StoreTarget
from flowbus.config.steps import BaseStep, EntityStep, child_blocks

MAX_KEYS = 100


def _steps(steps: Iterable[BaseStep]) -> Iterable[BaseStep]:
    for step in steps:
        yield step
        for _path, block in child_blocks(step):
            yield from _steps(block)


def entity_names(config: Config) -> list[str]:
    names = {s.entity for flow in config.flows for s in _steps(flow.steps) if isinstance(s, EntityStep)}
    names |= {entity for t in config.targets if isinstance(t, StoreTarget) for entity in t.keys}
    return sorted(names)


@page
async def entities_page(request: Request, session: Session) -> Response:
    state: ApiState = request.app.state.flowbus
    backend = state.backend(session.project)
    try:
        names = entity_names((await state.engine(session.project)).plan.config)
    except ApiError:
        names = []
    entity = request.query_params.get("entity", "").strip()[:200]
    key = request.query_params.get("key", "").strip()[:1000]
    record, version, listed = None, None, None
    if entity and key:
        found = await backend.read_entity(entity, key)
        if found is not None:
            record, version = found.record, found.version
    elif entity:
        listed = await backend.entities(entity, limit=MAX_KEYS + 1)
    return html(request, "entities.html", session, nav="entities", names=names, entity=entity, key=key,
                record=record, version=version, listed=listed, max_keys=MAX_KEYS)  # fmt: skip
