"""Admin (scope ``admin``): drafts, publishing, versions, diffs, rollback, the manifest, dead
letters and their redrive, match: what a message or event would run, without running it, and
purge: what retention removes, now."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response
from starlette.types import Receive
from starlette.types import Scope as AsgiScope

from flowbus import jsonio
from flowbus.api import paths  # noqa: F401 - registers {message_id:dead_letter}, used below
from flowbus.api.auth import needs
from flowbus.api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from flowbus.api.ingest import read_body
from flowbus.api.reads import TIME_PATTERN, Cursor, Limit, Name, backend_of, json_response, message_data, page
from flowbus.api.state import ApiState
from flowbus.config import ConfigError, load_config_text
from flowbus.ids import ID_PATTERN
from flowbus.keys import Scope
from flowbus.publishing import PublishResult, check_project, diff_versions, publish_config, rollback
from flowbus.queue import MessageState, QueueName
from flowbus.reads import utc_time
from flowbus.retention import KINDS, purge_due, utc_now
from flowbus.runtime.inbound import event_type_of
from flowbus.runtime.routing import match, match_event
from flowbus.stores.protocols import DeadLetterFilter, RetentionKind

#: the largest admin body: a draft holds a whole config file (5 MiB of text), and escaped in JSON
#: each character may take six bytes (``\u00e9``); past it, a 413 while the body is read
MAX_BODY_BYTES = 6 * 5 * 1024 * 1024 + 64 * 1024


class AdminRoute(APIRoute):
    """A route whose JSON body flowbus reads itself, as the ingress does: bounded while it is read,
    and a key twice, nesting past 64 levels, an integer past 4,300 digits or text that is not
    Unicode refused in flowbus's words. FastAPI's own reading takes the last of two keys (a
    ``dry_run`` given as true, then false, purged) and says only that the body could not be parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def read_then_handle(request: Request) -> Response:
            raw = await read_body(request, MAX_BODY_BYTES)
            parsed: Any = None
            if raw and _may_be_json(request.headers.get("content-type")):
                try:
                    parsed = jsonio.loads(raw)
                except jsonio.JsonError as exc:
                    error = {"type": "json_invalid", "loc": ("body",), "msg": exc.message, "input": None}
                    raise RequestValidationError([error]) from None
                if parsed is not None and not isinstance(parsed, dict):
                    # every admin body is an object. FastAPI reads a model from any object's
                    # attributes, so a bare decimal number (which has none of the fields) read as a
                    # body of all defaults: a `/purge` that purged
                    message = f"the body is a JSON {_json_kind(parsed)}, not an object"
                    raise RequestValidationError(
                        [{"type": "model_type", "loc": ("body",), "msg": message, "input": None}]
                    )
            return await handle(_ReadRequest(request.scope, request.receive, raw, parsed))

        return read_then_handle


def _json_kind(value: Any) -> str:
    """What a parsed JSON value that is not an object is, in JSON's words."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    return "array" if isinstance(value, list) else "string"


def _may_be_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of ``content_type`` as JSON (none at all: it may)."""
    if not content_type:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class _ReadRequest(Request):
    """A request whose body was read (and parsed, when JSON) before FastAPI asks for it."""

    def __init__(self, scope: AsgiScope, receive: Receive, raw: bytes, parsed: Any) -> None:
        super().__init__(scope, receive)
        self._raw = raw
        self._parsed = parsed

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        return self._parsed


router = APIRouter(
    prefix="/v1/projects/{project}",
    tags=["admin"],
    responses={**ERROR_RESPONSES, 413: {"model": ErrorBody, "description": "the body is over the limit"}},
    dependencies=[needs(Scope.ADMIN)],
    route_class=AdminRoute,
)


#: a dead letter's id, as the document states it (the route takes any segment but redrive)
MessageId = Annotated[str, Path(pattern=ID_PATTERN, description="the dead letter's message id")]
#: a config version number, bounded so that no driver is handed an integer it cannot store
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Body(BaseModel):
    """A request body: strict, no unknown fields, and only text a store can keep."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _unicode_only(cls, data: Any) -> Any:
        where = jsonio.lone_surrogate(data)
        if where is not None:  # refused here, not by the database mid-write
            raise ValueError(f"{where} holds a lone surrogate, which is not a character")
        return data


class DraftBody(Body):
    text: str = Field(
        min_length=1,  # an empty file is no config; whether a text is one, the document cannot say
        max_length=5 * 1024 * 1024,
        description="the config, YAML or JSON; saved only if it is a valid config of the project",
    )


class RedriveBody(Body):
    ids: list[str] = Field(default_factory=list, max_length=10_000)
    current_version: bool = False


class MatchBody(Body):
    """A message from a source (its type given, or found in ``data`` as the ingress would), or
    an event: a body naming neither is refused, and the document says so (``anyOf``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["source"], "properties": {"source": {"type": "string"}}},
                {"required": ["event"], "properties": {"event": {"type": "string"}}},
            ]
        }
    )

    source: str | None = None
    event_type: str | None = None
    event: str | None = None
    data: Any = None


class PurgeBody(Body):
    dry_run: bool = Field(default=False, description="count what would be removed; remove nothing")
    before: str | None = Field(
        default=None,
        json_schema_extra={"pattern": TIME_PATTERN},
        description="remove what was made before this ISO 8601 time (UTC without an offset), instead of "
        "what is past the ages of the config's retention",
    )
    what: list[Literal["events", "runs", "steps", "messages", "dead_letters"]] = Field(
        default_factory=lambda: [kind.value for kind in KINDS], min_length=1, max_length=len(KINDS),
        description="which kinds",
    )  # fmt: skip


def _published(result: PublishResult) -> Response:
    """The answer to publish and rollback: the version, whether it was unchanged, and the diff."""
    return json_response({"version": result.version.number, "unchanged": result.unchanged, **result.diff.to_data()})


def _config_error(exc: ConfigError) -> ApiError:
    issues = [{"line": i.location.line, "field": i.location.field, "message": i.message} for i in exc.issues]
    # one error names its reason in the headline (such as a config naming another project)
    errors = [i for i in exc.issues if i.severity == "error"]
    headline = f"the config is not valid: {errors[0].message}" if len(errors) == 1 else "the config is not valid"
    return ApiError(422, headline, issues=issues)


@router.get("/draft", summary="The project's draft config")
async def get_draft(project: str, request: Request) -> Response:
    backend = backend_of(request, project)
    draft = await backend.get_draft()
    if draft is None:
        raise ApiError(404, f"project {project!r} has no draft")
    return json_response({"text": draft[0], "file": draft[1]})


@router.put("/draft", summary="Save the draft (validated, not published)")
async def put_draft(project: str, request: Request, body: DraftBody) -> Response:
    backend = backend_of(request, project)
    try:
        check_project(load_config_text(body.text, file="draft.yaml", keep=False), project)
    except ConfigError as exc:
        raise _config_error(exc) from None
    await backend.save_draft(body.text, file="draft.yaml")
    return json_response({"saved": True})


@router.post("/publish", summary="Publish the draft as the next version")
async def publish_draft(project: str, request: Request) -> Response:
    backend = backend_of(request, project)
    draft = await backend.get_draft()
    if draft is None:
        raise ApiError(404, f"project {project!r} has no draft to publish")
    try:
        result = await publish_config(backend, draft[0], file=draft[1])
    except ConfigError as exc:
        raise _config_error(exc) from None
    return _published(result)


@router.get("/versions", summary="Config versions, oldest first")
async def list_versions(project: str, request: Request) -> Response:
    backend = backend_of(request, project)
    active = await backend.active_version()
    return json_response([
        {"number": v.number, "created_at": v.created_at, "content_hash": v.content_hash, "summary": v.summary,
         "active": v.number == active}
        for v in await backend.versions()
    ])  # fmt: skip


@router.get("/versions/{old}/diff/{new}", summary="What changed between two versions")
async def get_diff(project: str, old: VersionNumber, new: VersionNumber, request: Request) -> Response:
    backend = backend_of(request, project)
    return json_response((await diff_versions(backend, old, new)).to_data())


@router.post("/versions/{number}/rollback", summary="Publish an old version again, as a new one")
async def post_rollback(project: str, number: VersionNumber, request: Request) -> Response:
    backend = backend_of(request, project)
    result = await rollback(backend, number)
    return _published(result)


@router.get("/manifest", summary="What the active version dispatches")
async def get_manifest(project: str, request: Request) -> Response:
    backend = backend_of(request, project)
    manifest = await backend.manifest()
    if manifest is None:
        raise ApiError(404, f"project {project!r} has no active config version")
    return json_response({
        "version": manifest.version,
        "routes": [{"source": s, "event_type": t, "flows": list(f)} for (s, t), f in manifest.routes.items()],
        "handlers": {e: [{"handler": h, "mode": m} for h, m in hs] for e, hs in manifest.handlers.items()},
    })  # fmt: skip


@router.get("/dead-letters", summary="Messages whose attempts are used up, oldest first")
async def list_dead_letters(
    project: str,
    request: Request,
    queue: QueueName | None = None,
    name: Name = None,
    group: Name = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """``name``: the handler (outbound) or source (inbound) of the message."""
    backend = backend_of(request, project)
    where = DeadLetterFilter(queue=queue, name=name, group_key=group)
    dead = await backend.dead_letters(where, after=cursor, limit=limit + 1)
    return page(dead, limit, lambda m: m.to_dict())


@router.get("/dead-letters/{message_id:dead_letter}", summary="A dead letter: every attempt's error and runs")
async def get_dead_letter(project: str, message_id: MessageId, request: Request) -> Response:
    backend = backend_of(request, project)
    message = await backend.get_message(message_id)
    if message is None or message.state is not MessageState.DEAD:
        raise ApiError(404, f"no dead letter {message_id!r} in project {project!r}")
    return json_response(await message_data(backend, message))


@router.post("/dead-letters/redrive", summary="Put dead letters back with fresh attempts")
async def redrive(project: str, request: Request, body: RedriveBody) -> Response:
    backend = backend_of(request, project)
    version = await backend.active_version() if body.current_version else None
    return json_response({"redriven": await backend.redrive(body.ids, config_version=version)})


@router.post("/match", summary="Which flows and handlers a message or event would run, without running it")
async def post_match(project: str, request: Request, body: MatchBody) -> Response:
    state: ApiState = request.app.state.flowbus
    plan = (await state.active(project)).plan
    if body.event is not None:
        found = match_event(plan, body.event)
        subscribers = plan.subscribers.get(body.event)
        handlers = (*subscribers.sync, *subscribers.async_) if subscribers is not None else ()
        data = body.data if isinstance(body.data, dict) else {}
        inputs = {h.name: {name: data.get(prop) for prop, name in h.bindings} for h in handlers}
        return json_response(
            {"event": body.event, "sync": list(found.sync), "async": list(found.async_), "inputs": inputs}
        )
    if body.source is None:
        raise ApiError(422, "give `source` (with `event_type` or `data`), or `event`")
    resolved = body.event_type or event_type_of(plan, body.source, body.data)
    # no type found: the ingress would refuse such a message, so nothing would run (an answer,
    # not a refusal: whether a type is found in data depends on the config, which the document
    # cannot say)
    flows = list(match(plan, body.source, resolved).flows) if resolved else []
    return json_response({"source": body.source, "event_type": resolved, "flows": flows})


@router.post("/purge", summary="Remove (or count) what is past its retention; how many of each kind")
async def post_purge(project: str, request: Request, body: PurgeBody) -> Response:
    backend = backend_of(request, project)
    now = utc_now()
    try:
        before = utc_time(body.before) if body.before is not None else None
    except ValueError as exc:
        raise ApiError(422, f"before is {exc}", issues=[{"where": "body.before"}]) from None
    kinds = [RetentionKind(name) for name in body.what]
    counts = await purge_due(backend, kinds=kinds, before=before, dry_run=body.dry_run, now=now)
    return json_response({"dry_run": body.dry_run, "removed": {kind.value: n for kind, n in counts.items()}})
