"""Dead letters: a filtered, keyset-paged list; each one's attempts; redrive of one or many, with
a dry run saying what each would run, on which config version."""

from __future__ import annotations

from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowbus import reads
from flowbus.api.dashboard.access import Form, action, first, page, refused
from flowbus.api.dashboard.render import html
from flowbus.api.dashboard.runs import ID_PATTERN
from flowbus.api.dashboard.session import Session
from flowbus.config import LoadedConfig, load_config_text
from flowbus.queue import MessageKind, MessageState, QueuedMessage, QueueName
from flowbus.stores.protocols import Backend, DeadLetterFilter
from flowbus.trace import trace_message

PAGE = 50
#: the most dead letters one redrive takes (as the API's)
MAX_REDRIVE = 10_000


class WouldRun(NamedTuple):
    message: QueuedMessage
    version: int | None
    runs: list[str]


def name_of(message: QueuedMessage) -> str:
    """The handler (outbound) or source (inbound) of a message."""
    body = message.body
    return str(body.get("handler") or body.get("source") or body.get("event") or "") if hasattr(body, "get") else ""


def would_run(message: QueuedMessage, loaded: LoadedConfig | None) -> list[str]:
    """What the message runs on a config: its source's flows, or its handler's flow."""
    if loaded is None:
        return []
    body = message.body if hasattr(message.body, "get") else {}
    if message.kind is MessageKind.SOURCE:
        flows = loaded.plan.routes.get((str(body.get("source")), str(body.get("type"))), ())
        return [f"flow {flow.model.name}" for flow in flows]
    if message.kind is MessageKind.HANDLER:
        found = [h for h in loaded.config.handlers if h.name == body.get("handler")]
        return [f"handler {h.name} → flow {h.flow}" for h in found]
    subscribers = loaded.plan.subscribers.get(str(body.get("event")))
    if subscribers is None:
        return []
    return [f"publish {body.get('event')}, then handler {h.name}" for h in (*subscribers.sync, *subscribers.async_)]


async def _config(backend: Backend, number: int | None, cache: dict[int, LoadedConfig | None]) -> LoadedConfig | None:
    if number is None:
        return None
    if number not in cache:
        version = await backend.get_version(number)
        cache[number] = load_config_text(version.text, file=version.file) if version is not None else None
    return cache[number]


def _filter(request: Request) -> tuple[DeadLetterFilter, dict[str, str]]:
    params = request.query_params
    fields = {name: params.get(name, "").strip()[:200] for name in ("queue", "name", "group")}
    queue = QueueName(fields["queue"]) if fields["queue"] in set(QueueName) else None
    where = DeadLetterFilter(queue=queue, name=fields["name"] or None, group_key=fields["group"] or None)
    return where, {k: v for k, v in fields.items() if v}


@page
async def dead_letters_page(request: Request, session: Session) -> Response:
    backend: Backend = request.app.state.flowbus.backend(session.project)
    where, fields = _filter(request)
    after = request.query_params.get("after")
    found = await backend.dead_letters(
        where, after=after if after and ID_PATTERN.match(after) else None, limit=PAGE + 1
    )
    shown, next_after = reads.split_page(found, PAGE, lambda m: m.id)
    return html(request, "dead_letters.html", session, nav="dead", messages=shown, fields=fields,
                next_after=next_after, name_of=name_of, queues=list(QueueName),
                redriven=request.query_params.get("redriven", ""), active=await backend.active_version())  # fmt: skip


@page
async def dead_letter_page(request: Request, session: Session) -> Response:
    backend: Backend = request.app.state.flowbus.backend(session.project)
    message_id = request.path_params["message_id"]
    message = await backend.get_message(message_id)
    if message is None or message.state is not MessageState.DEAD:
        return refused(request, session, 404, f"no dead letter {message_id!r} in project {session.project!r}")
    runs = [tree.record for tree in await trace_message(backend, message.id)]
    return html(request, "dead_letter.html", session, nav="dead", message=message, runs=runs, name=name_of(message),
                active=await backend.active_version())  # fmt: skip


@action
async def redrive(request: Request, session: Session, form: Form) -> Response:
    """``do=dry``: what each would run and on which version, nothing changed; else redrive them."""
    backend: Backend = request.app.state.flowbus.backend(session.project)
    ids = [i for i in form.get("ids", []) if ID_PATTERN.match(i)][:MAX_REDRIVE]
    if not ids:
        return refused(request, session, 422, "choose at least one dead letter")
    active = await backend.active_version()
    on_active = first(form, "version") == "active"
    if first(form, "do") != "dry":
        count = await backend.redrive(ids, config_version=active if on_active else None)
        return RedirectResponse(f"/p/{session.project}/dead-letters?redriven={count}", status_code=303)
    cache: dict[int, LoadedConfig | None] = {}
    plans = []
    for message_id in ids[:PAGE]:
        message = await backend.get_message(message_id)
        if message is None or message.state is not MessageState.DEAD:
            continue
        version = active if on_active else message.config_version or active
        plans.append(WouldRun(message, version, would_run(message, await _config(backend, version, cache))))
    return html(request, "redrive_dry_run.html", session, nav="dead", plans=plans, ids=ids, on_active=on_active,
                name_of=name_of, active=active)  # fmt: skip
