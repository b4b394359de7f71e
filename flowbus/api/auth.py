"""Bearer API keys: 401 without a valid key, 403 for a key of another scope or project."""

from __future__ import annotations

from starlette.requests import Request

from flowbus.api.errors import ApiError
from flowbus.api.state import DEFAULT_PROJECT, ApiState
from flowbus.keys import ApiKey, InvalidApiKey, Scope, parse_token, verifies

#: one answer for an unknown key id and a wrong secret, so that key ids cannot be enumerated
NOT_VALID = "the API key is not valid (unknown, revoked, or a wrong secret)"


async def require(state: ApiState, request: Request, project: str, scope: Scope) -> ApiKey:
    """The key of the request, when it may do ``scope`` on ``project``."""
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
