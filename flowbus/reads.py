"""The reads the HTTP API and the CLI share: pages of events, runs and entity records as plain
data, and the parsing of what a reader asks for (times, field filters).

A page is ``{"items": [...], "next_cursor": ...}``, fetched with ``limit + 1`` rows: the extra
row only says another page follows. The cursor is the last id (events, runs) or key (records)
of the page; the next page starts after it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from flowbus.events.frozen import thaw
from flowbus.runtime.changes import Versioned
from flowbus.stores.protocols import MAX_FIELD_FILTERS, Backend, EventFilter, KeyedRecord, RunFilter
from flowbus.trace import run_summary

T = TypeVar("T")


#: an ISO 8601 time (RFC 3339, the offset optional), each part within its range, so that a text
#: of this form is a time except for a day past its month's end
TIME_PATTERN = (
    r"^(000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$"
)
_TIME = re.compile(TIME_PATTERN, re.ASCII)  # \d is any Unicode digit without it


def utc_time(text: str) -> dt.datetime:
    """An ISO 8601 time in UTC, the zone every stored time is in; without an offset it is UTC.
    Raises ValueError saying why the text is not a time."""
    if not _TIME.match(text):
        raise ValueError(f"not a valid time: {text[:64]!r}; write it as ISO 8601, such as 2026-11-22T10:00:00Z")
    try:
        value = dt.datetime.fromisoformat(text)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        # Python's own message speaks of timedelta objects: say what a valid time is instead
        raise ValueError(
            f"not a valid time: {text!r} names no real date and time (a year from 0001, an offset within ±23:59)"
        ) from None


def field_filters(pairs: Iterable[str]) -> dict[str, str]:
    """``FIELD=TEXT`` pairs as a field filter (the field is what comes before the first ``=``).
    Raises ValueError naming the pair that is wrong."""
    where: dict[str, str] = {}
    for pair in pairs:
        field, equals, text = pair.partition("=")
        if not field or not equals:
            raise ValueError(f"{pair!r} is not FIELD=VALUE")
        if field in where:
            raise ValueError(f"the field {field!r} is filtered twice; a record has one value for it")
        where[field] = text
    if len(where) > MAX_FIELD_FILTERS:
        raise ValueError(f"{len(where)} field filters; at most {MAX_FIELD_FILTERS} are allowed")
    return where


def split_page(found: Sequence[T], limit: int, cursor: Callable[[T], str]) -> tuple[Sequence[T], str | None]:
    """The items of a list fetched with ``limit + 1`` (the extra one only says another page
    follows), and the cursor of the next page, if one follows."""
    shown = found[:limit]
    return shown, cursor(shown[-1]) if len(found) > limit else None


def page(found: Sequence[T], limit: int, item: Callable[[T], Any], cursor: Callable[[T], str]) -> dict[str, Any]:
    """A page of a list fetched with ``limit + 1`` items, as the API and ``--json`` give it."""
    shown, next_cursor = split_page(found, limit, cursor)
    return {"items": [item(x) for x in shown], "next_cursor": next_cursor}


def record_data(key: str, stored: Versioned | KeyedRecord) -> dict[str, Any]:
    """An entity record as plain data: its key, version and fields."""
    return {"key": key, "version": stored.version, "data": thaw(stored.record)}


async def events_page(backend: Backend, where: EventFilter, cursor: str | None, limit: int) -> dict[str, Any]:
    """Event instances, newest first."""
    found = await backend.list_events(where, before=cursor, limit=limit + 1)
    return page(found, limit, lambda e: e.to_dict(), lambda e: e.id)


async def runs_page(backend: Backend, where: RunFilter, cursor: str | None, limit: int) -> dict[str, Any]:
    """Runs without their steps, newest first."""
    found = await backend.list_runs(where, before=cursor, limit=limit + 1)
    return page(found, limit, run_summary, lambda r: r.id)


async def records_page(
    backend: Backend, entity: str, where: dict[str, str], cursor: str | None, limit: int
) -> dict[str, Any]:
    """Records of one entity in key order."""
    found = await backend.list_entities(entity, where, after=cursor, limit=limit + 1)
    return page(found, limit, lambda r: record_data(r.key, r), lambda r: r.key)
