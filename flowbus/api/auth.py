"""Bearer API keys: 401 without a valid key, 403 for a key of another scope or project.

One check, :func:`require`, for every route: the ingest app calls it first thing, and the FastAPI
routers take it as a dependency (:func:`needs`), which runs before the body is read, so that an
unauthorised request is a 401 or 403 whatever its body.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from starlette.requests import Request

from flowbus.api.errors import ApiError
from flowbus.api.state import DEFAULT_PROJECT, ApiState
from flowbus.keys import ApiKey, InvalidApiKey, Scope, parse_token, verifies

#: one answer for an unknown key id and a wrong secret, so that key ids cannot be enumerated
NOT_VALID = "the API key is not valid (unknown, revoked, or a wrong secret)"


async def require(request: Request, project: str, scope: Scope) -> ApiKey:
    """The key of the request, when it may do ``scope`` on ``project``."""
    state: ApiState = request.app.state.flowbus
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "an API key is required: Authorization: Bearer fbk_<id>_<secret>")
    try:
        key_id, secret = parse_token(token.strip())
    except InvalidApiKey as exc:
        raise ApiError(401, exc.message) from None
    key = await state.key(project, key_id)
    if key is None:
        elsewhere = await state.backend(DEFAULT_PROJECT).find_key(key_id)
        if elsewhere is not None and verifies(elsewhere, secret):
            raise ApiError(403, f"this API key belongs to another project, not to {project!r}")
        raise ApiError(401, NOT_VALID)
    if not verifies(key, secret):
        raise ApiError(401, NOT_VALID)
    if scope not in key.scopes and Scope.ADMIN not in key.scopes:
        raise ApiError(403, f"this API key lacks the {scope} scope (it has: {', '.join(key.scopes) or 'none'})")
    return key


def needs(scope: Scope) -> Any:
    """:func:`require` as a FastAPI dependency of the routes under ``/v1/projects/{project}``."""

    async def required(project: str, request: Request) -> None:
        await require(request, project, scope)

    return Depends(required)
