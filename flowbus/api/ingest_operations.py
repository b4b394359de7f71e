"""The ingest operations as the FastAPI app declares them: its OpenAPI document describes them
from the models here, as it does every other route, and its 405s name their methods (a GET of a
source's path is a 405 naming POST).

The ingest app (:mod:`flowbus.api.ingest`) sits in front and serves every POST to these paths
before FastAPI sees one; were one to reach FastAPI, it would be served by the same handler.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from flowbus.api import cloudevents
from flowbus.api.errors import ERROR_RESPONSES, ErrorBody
from flowbus.api.ingest import CLOUDEVENTS_PATH, MAX_HEADER_CHARS, SOURCE_PATH, ingest_cloudevents, ingest_source


class SourceHeaders(BaseModel):
    """The headers the source ingress reads."""

    x_event_type: str | None = Field(
        None, max_length=MAX_HEADER_CHARS, description="the event type, when the source has no event_type_from"
    )
    idempotency_key: str | None = Field(
        None, max_length=MAX_HEADER_CHARS, description="a repeat within the de-duplication window is dropped"
    )
    x_group_key: str | None = Field(
        None, max_length=MAX_HEADER_CHARS, description="the FIFO group: messages of one group run in order"
    )


class CloudEventHeaders(BaseModel):
    """The headers the CloudEvents ingress reads: a group, and in binary mode the attributes
    (the body is then the event's data)."""

    x_group_key: str | None = Field(
        None, max_length=MAX_HEADER_CHARS, description="the FIFO group, instead of the events' subjects"
    )
    ce_specversion: str | None = Field(None, max_length=MAX_HEADER_CHARS, description="binary mode: 1.0")
    ce_id: str | None = Field(None, max_length=MAX_HEADER_CHARS, description="binary mode: the CloudEvent's id")
    ce_source: str | None = Field(None, max_length=MAX_HEADER_CHARS, description="binary mode: its source")
    ce_type: str | None = Field(None, max_length=MAX_HEADER_CHARS, description="binary mode: its type")
    ce_subject: str | None = Field(None, max_length=MAX_HEADER_CHARS, description="binary mode: its subject")


#: a whole number from 1, or its text (binary mode sends every attribute as text)
EventVersion = Annotated[int, Field(ge=1, le=999_999_999)] | Annotated[str, Field(pattern=r"^[1-9][0-9]{0,8}$")]


class CloudEvent(BaseModel):
    """A CloudEvent 1.0 in structured mode, as the ingress reads it."""

    model_config = ConfigDict(title="CloudEvent")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1, description="a defined event type of the project")
    subject: str | None = Field(None, description="the FIFO group, unless X-Group-Key is sent")
    time: str | None = None
    datacontenttype: str | None = None
    data: dict[str, Any] | None = Field(None, description="the event's properties (none when absent or null)")
    eventversion: EventVersion | None = Field(
        None, description="the version of the event type it is (default: the latest the config defines)"
    )


class SourceAccepted(BaseModel):
    """The answer to a source's payload: the queued message, and the event type it was given."""

    message_id: str
    event_type: str


class AcceptedEvent(BaseModel):
    id: str = Field(description="the CloudEvent's id")
    message_id: str = Field(description="its queued message")


class CloudEventsAccepted(BaseModel):
    """The answer to CloudEvents: each event with its queued message's id, in order."""

    accepted: list[AcceptedEvent]


_TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"model": ErrorBody, "description": "the body is over the limit"}}
_EVENT_SCHEMA = CloudEvent.model_json_schema()
_BATCH_SCHEMA = {"type": "array", "items": _EVENT_SCHEMA, "maxItems": cloudevents.MAX_BATCH}

router = APIRouter(prefix="/v1/projects/{project}", tags=["ingest"], responses=ERROR_RESPONSES)

Project = Annotated[str, Path(description="the project")]


@router.post(
    SOURCE_PATH.removeprefix(router.prefix),
    summary="Ingest a raw JSON payload from a source",
    description=(
        "The event type comes from the source's event_type_from JSONPath, else from "
        "X-Event-Type. Answers 202 with the queued message's id: workers route and run it."
    ),
    operation_id="ingest_source",
    status_code=202,
    response_model=SourceAccepted,
    response_description="queued",
    responses={**_TOO_LARGE, 415: {"model": ErrorBody, "description": "the body is not JSON"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
)
async def source_operation(
    request: Request,
    project: Project,
    source: Annotated[str, Path(description="a source declared by the project's config")],
    headers: Annotated[SourceHeaders, Header()],
) -> Response:
    # the parameters are for the document: the handler reads the request itself
    return await ingest_source(request)


@router.post(
    CLOUDEVENTS_PATH.removeprefix(router.prefix),
    summary="Ingest CloudEvents 1.0: structured, batch or binary mode",
    description=(
        "Events of a defined type are checked now (422, one entry per bad property) and "
        "published by workers. The CloudEvent's source and id make its de-duplication id."
    ),
    operation_id="ingest_cloudevents",
    status_code=202,
    response_model=CloudEventsAccepted,
    response_description="accepted, each event with its queued message's id",
    responses={**_TOO_LARGE, 415: {"model": ErrorBody, "description": "not a CloudEvents content mode"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                cloudevents.STRUCTURED: {"schema": _EVENT_SCHEMA},
                cloudevents.BATCH: {"schema": _BATCH_SCHEMA},
                "application/json": {"schema": {"type": "object", "description": "binary mode: the event's data"}},
            },
        }
    },
)
async def cloudevents_operation(
    request: Request, project: Project, headers: Annotated[CloudEventHeaders, Header()]
) -> Response:
    return await ingest_cloudevents(request)
