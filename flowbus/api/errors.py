"""Error responses: one JSON shape for every refusal, never a bare 500."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse


class ErrorBody(BaseModel):
    """Every refusal: a message, sometimes with details (issues, events, sources...)."""

    model_config = ConfigDict(extra="allow")
    error: str


#: the refusals every project route may answer, for the OpenAPI document
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "the body could not be read as its content type says"),
        (401, "no valid API key"),
        (403, "the key lacks the scope, or belongs to another project"),
        (404, "no such thing in the project"),
        (409, "the project has no published config"),
        (422, "the request is not valid (a field or parameter is wrong, or the JSON is malformed)"),
        (503, "the store is unavailable; retry after Retry-After seconds"),
    )
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.details = details

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.details:
            body.update(self.details)
        headers = {**self.headers, **({"WWW-Authenticate": "Bearer"} if self.status == 401 else {})}
        return JSONResponse(body, status_code=self.status, headers=headers or None)
