"""Immutable config versions: what `flowbus publish` stores and workers switch to."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # the stores read versions without building the config models
    from flowbus.config.model import Config


class ConfigVersion(NamedTuple):
    """One published version of a project's config. ``number`` is 0 until the store numbers it."""

    number: int
    text: str
    file: str
    content_hash: str
    created_at: dt.datetime
    #: how it differs from the version before it, in one line
    summary: str = ""


def content_hash(config: Config) -> str:
    """A hash of what the config means, not how it is written: comments and layout do not count."""
    canonical = json.dumps(config.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
