"""Dashboard sessions: an API key signs in once; the browser then holds a signed cookie.

The cookie names the key and carries no secret. It is signed with an HMAC keyed by the key's
stored secret hash, so every server sharing the database verifies it without a secret of its own,
and revoking the key ends its sessions at once (the record is read again on every request). The
CSRF token of a session is an HMAC of the session's random nonce under the same key: a form that
changes something must carry it, which a page on another site cannot read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import NamedTuple

from starlette.requests import Request

from flowbus import jsonio
from flowbus.api.state import DEFAULT_PROJECT, ApiState
from flowbus.keys import ApiKey, InvalidApiKey, Scope, parse_token, verifies

COOKIE = "flowbus_session"
#: a session lasts a working day; signing in again starts a new one
SESSION_S = 12 * 3600


class SignInRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Session(NamedTuple):
    key: ApiKey
    nonce: str

    @property
    def project(self) -> str:
        return self.key.project

    @property
    def admin(self) -> bool:
        return Scope.ADMIN in self.key.scopes

    @property
    def csrf(self) -> str:
        return _sign(self.key, f"csrf:{self.nonce}")


def _sign(key: ApiKey, text: str) -> str:
    return hmac.new(key.secret_hash.encode(), text.encode(), hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def sign_in(state: ApiState, token: str) -> tuple[Session, str]:
    """The session of a read or admin key, and its cookie value; refused with a reason otherwise."""
    try:
        key_id, secret = parse_token(token.strip())
    except InvalidApiKey as exc:
        raise SignInRefused(exc.message) from None
    key = await _find(state, key_id)
    if key is None or not verifies(key, secret):
        raise SignInRefused("the API key is not valid (wrong, or revoked)")
    if Scope.READ not in key.scopes and Scope.ADMIN not in key.scopes:
        raise SignInRefused(f"this API key has the {', '.join(key.scopes)} scope; the dashboard needs read or admin")
    session = Session(key, secrets.token_urlsafe(16))
    payload = _b64(jsonio.dumps([key.project, key.id, session.nonce, int(time.time()) + SESSION_S]).encode())
    return session, f"{payload}.{_sign(key, payload)}"


async def _find(state: ApiState, key_id: str) -> ApiKey | None:
    """A key by id in any project: the SQL backends look across projects; a memory backend holds
    one project, so each one opened so far is asked."""
    found = await state.backend(DEFAULT_PROJECT).find_key(key_id)
    for backend in state.backends().values():
        found = found or await backend.find_key(key_id)
    return found


async def current(state: ApiState, request: Request) -> Session | None:
    """The request's session, when its cookie is intact, unexpired and its key still valid."""
    cookie = request.cookies.get(COOKIE, "")
    payload, _, signature = cookie.partition(".")
    try:
        project, key_id, nonce, expires = jsonio.loads(_unb64(payload))  # bounded: the cookie is untrusted
    except (ValueError, TypeError, jsonio.JsonError):
        return None
    if not all(isinstance(v, str) for v in (project, key_id, nonce)) or not isinstance(expires, int):
        return None
    if expires < time.time():
        return None
    key = await state.key(project, key_id)
    if key is None or not key.active or not _same(_sign(key, payload), signature):
        return None
    return Session(key, nonce)


def csrf_holds(session: Session, token: str) -> bool:
    return _same(session.csrf, token)


def _same(expected: str, given: str) -> bool:
    """Compared in constant time; as bytes, since a request may carry any characters."""
    return hmac.compare_digest(expected.encode(), given.encode(errors="replace"))
