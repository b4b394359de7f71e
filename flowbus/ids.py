"""Identifiers: UUIDv7 strings, ordered by creation time so database indexes stay append-only.

Ids are made on every run and event, so this is on the hot path. Instead of 74 fresh random
bits per id, each process draws a random 32-bit node value and a random starting point for a
42-bit counter (RFC 9562 §6.2, method 1: a counter in ``rand_a`` and the top of ``rand_b``), then
counts. Ids stay unique and time-ordered within a process, and unique across processes unless
two draw the same 32 random bits and collide on the counter within the same millisecond.

"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time

#: sorts after every id in every collation: the start of a newest-first page of ids
MAX_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
#: the text of an id (a cursor of a list is one): checked before it reaches a query
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

_COUNTER_BITS = 42
_COUNTER_MASK = (1 << _COUNTER_BITS) - 1


class _Seed:
    """The per-process random parts of ids, drawn again in a forked child."""

    def __init__(self) -> None:
        self.draw()

    def draw(self) -> None:
        self.node = int.from_bytes(os.urandom(4), "big")
        self.counter = itertools.count(int.from_bytes(os.urandom(6), "big") & (_COUNTER_MASK >> 1))


_seed = _Seed()
os.register_at_fork(after_in_child=_seed.draw)


def new_id() -> str:
    """A new UUIDv7 (RFC 9562) in its canonical text form."""
    count = next(_seed.counter) & _COUNTER_MASK
    millis = time.time_ns() // 1_000_000
    return "%08x-%04x-%04x-%04x-%04x%08x" % (  # noqa: UP031 - one format call is the fastest way here
        millis >> 16,
        millis & 0xFFFF,
        0x7000 | (count >> 30),  # version 7, then the counter's top 12 bits (rand_a)
        0x8000 | (count >> 16) & 0x3FFF,  # RFC 9562 variant, then 14 more counter bits
        count & 0xFFFF,
        _seed.node,
    )


def floor_id(at: dt.datetime) -> str:
    """The smallest id made at ``at`` (to the millisecond): ids at or after ``at`` sort at or above
    it, so a time window is a range of ids, read from a primary key."""
    millis = max(0, int(at.timestamp() * 1000))
    return "%08x-%04x-7000-8000-000000000000" % (millis >> 16, millis & 0xFFFF)  # noqa: UP031 - as new_id


def time_of(identifier: str) -> dt.datetime:
    """When an id was made (to the millisecond)."""
    millis = int(identifier[:8] + identifier[9:13], 16)
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
