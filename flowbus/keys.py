"""API keys: per project, with scopes, stored only as a hash of their secret.

A key reads ``fbk_<id>_<secret>``: the id finds the stored record, the secret is checked
against its SHA-256 in constant time. The secret is shown once, when the key is created.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from typing import NamedTuple

from flowbus.errors import FlowbusError

PREFIX = "fbk"


class Scope(enum.StrEnum):
    INGEST = "ingest"  #: send messages and publish events
    READ = "read"  #: read events, runs and traces
    ADMIN = "admin"  #: drafts, versions, dead letters, match (and everything the others may do)


class ApiKey(NamedTuple):
    id: str
    project: str
    name: str
    scopes: tuple[Scope, ...]
    secret_hash: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class InvalidApiKey(FlowbusError):
    """An API key is malformed."""


def new_key(project: str, name: str, scopes: tuple[Scope, ...]) -> tuple[ApiKey, str]:
    """A new key record and the token to hand to its user (its only appearance)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(
        id=key_id,
        project=project,
        name=name,
        scopes=tuple(sorted(set(scopes))),
        secret_hash=_hash(secret),
        created_at=dt.datetime.now(dt.UTC),
    )
    return record, f"{PREFIX}_{key_id}_{secret}"


def parse_token(token: str) -> tuple[str, str]:
    """``(key id, secret)`` of a token; raises :class:`InvalidApiKey` when it is not one."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        raise InvalidApiKey("not a flowbus API key (they look like fbk_<id>_<secret>)")
    return key_id, secret


def verifies(record: ApiKey, secret: str) -> bool:
    return record.active and hmac.compare_digest(record.secret_hash, _hash(secret))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
