"""Entities: the store browsed by entity and key. Entity names come from the active config (the
entities its steps and store targets name); a key is read from the primary key, and an entity's
records are listed in key order, a page of :data:`PAGE_SIZE` at a time (a keyset page on the
primary key, as the API's entity list), filtered by ``FIELD=VALUE`` lines.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from flowbus import reads
from flowbus.api.dashboard.access import page
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.session import Session
from flowbus.api.errors import ApiError
from flowbus.api.state import ApiState
from flowbus.config.model import Config, StoreTarget
from flowbus.config.references import walk_steps
from flowbus.config.steps import EntityStep

PAGE_SIZE = 100


def entity_names(config: Config) -> list[str]:
    names = {s.entity for flow in config.flows for s, _ in walk_steps(flow.steps, ()) if isinstance(s, EntityStep)}
    names |= {entity for t in config.targets if isinstance(t, StoreTarget) for entity in t.keys}
    return sorted(names)


@page
async def entities_page(request: Request, session: Session) -> Response:
    state: ApiState = request.app.state.flowbus
    backend = state.backend(session.project)
    try:
        names = entity_names((await state.active(session.project)).plan.config)
    except ApiError:
        names = []
    query = request.query_params
    entity = query.get("entity", "").strip()[:200]
    key = query.get("key", "").strip()[:1000]
    where_text = query.get("where", "")[:2000]
    cursor = query.get("cursor") or None
    record, version, listed, problem = None, None, None, None
    if entity and key:
        found = await backend.read_entity(entity, key)
        if found is not None:
            record, version = found.record, found.version
    elif entity:
        try:
            where = reads.field_filters(line.strip() for line in where_text.splitlines() if line.strip())
            listed = await reads.records_page(backend, entity, where, cursor, PAGE_SIZE)
        except ValueError as exc:
            problem = str(exc)
    return html(request, "entities.html", session, nav="entities", names=names, entity=entity, key=key,
                where=where_text, record=record, version=version, listed=listed, problem=problem)  # fmt: skip
