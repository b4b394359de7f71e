"""The ingest routes in the OpenAPI document.

They are plain Starlette routes, reading the raw body (measured faster than FastAPI's body
handling), so FastAPI does not see them; their path items are written here and merged into the
generated document, once, on first request of ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from flowbus.api import cloudevents
from flowbus.api.errors import ERROR_RESPONSES
from flowbus.api.ingest import MAX_HEADER_CHARS

_ERROR = {"$ref": "#/components/schemas/ErrorBody"}


def _refusals(*extra: tuple[int, str]) -> dict[str, Any]:
    described = {status: spec["description"] for status, spec in ERROR_RESPONSES.items()}
    described.update(dict(extra))
    return {
        str(status): {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for status, text in sorted(described.items(), key=lambda item: str(item[0]))
    }


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": MAX_HEADER_CHARS},
        "description": description,
    }


_CLOUDEVENT = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "minLength": 1, "description": "a defined event type of the project"},
        "subject": {"type": "string", "description": "the FIFO group, unless X-Group-Key is sent"},
        "time": {"type": "string"},
        "datacontenttype": {"type": "string"},
        "data": {"type": "object", "description": "the event's properties"},
        "eventversion": {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 999_999_999},
                {"type": "string", "pattern": "^[1-9][0-9]{0,8}$"},
            ],
            "description": "the version of the event type it is (default: the latest the config defines)",
        },
    },
}

_TOO_LARGE = (413, "the body is over the size limit")


def ingest_paths() -> dict[str, Any]:
    """The OpenAPI path items of the source ingress and the CloudEvents endpoint."""
    project = _path_parameter("project", "the project")
    group = _header("X-Group-Key", "the FIFO group: messages of one group run in order")
    source_ingress = {
        "post": {
            "tags": ["ingest"],
            "summary": "Ingest a raw JSON payload from a source",
            "description": (
                "The event type comes from the source's event_type_from JSONPath, else from "
                "X-Event-Type. Answers 202 with the queued message's id: workers route and run it."
            ),
            "operationId": "ingest_source",
            "parameters": [
                project,
                _path_parameter("source", "a source declared by the project's config"),
                _header("X-Event-Type", "the event type, when the source has no event_type_from"),
                _header("Idempotency-Key", "a repeat within the de-duplication window is dropped"),
                group,
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
            "responses": {
                "202": {
                    "description": "queued",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["message_id", "event_type"],
                                "properties": {"message_id": {"type": "string"}, "event_type": {"type": "string"}},
                            }
                        }
                    },
                },
                **_refusals(_TOO_LARGE),
            },
        }
    }
    binary_headers = [
        _header(f"ce-{name}", f"binary mode: the CloudEvent's {name} (the body is its data)")
        for name in ("specversion", "id", "source", "type", "subject")
    ]
    cloudevents_ingress = {
        "post": {
            "tags": ["ingest"],
            "summary": "Ingest CloudEvents 1.0: structured, batch or binary mode",
            "description": (
                "Events of a defined type are checked now (422, one entry per bad property) and "
                "published by workers. The CloudEvent's source and id make its de-duplication id."
            ),
            "operationId": "ingest_cloudevents",
            "parameters": [project, group, *binary_headers],
            "requestBody": {
                "required": True,
                "content": {
                    cloudevents.STRUCTURED: {"schema": _CLOUDEVENT},
                    cloudevents.BATCH: {
                        "schema": {"type": "array", "items": _CLOUDEVENT, "maxItems": cloudevents.MAX_BATCH}
                    },
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "202": {
                    "description": "accepted, each event with its queued message's id",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["accepted"],
                                "properties": {
                                    "accepted": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "message_id"],
                                            "properties": {"id": {"type": "string"}, "message_id": {"type": "string"}},
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
                **_refusals(_TOO_LARGE, (415, "not a CloudEvents content mode")),
            },
        }
    }
    return {
        "/v1/projects/{project}/sources/{source}/events": source_ingress,
        "/v1/projects/{project}/events": cloudevents_ingress,
    }


def install(app: FastAPI) -> None:
    """Serve the generated document with the ingest paths merged in."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path, item in ingest_paths().items():
                document["paths"].setdefault(path, {}).update(item)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
