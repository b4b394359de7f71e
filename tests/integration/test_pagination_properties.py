"""Keyset pagination, as a property: whatever the events, the filter and the page size, following
the cursor page by page yields exactly the filtered events, newest first, each once."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbus.events.frozen import freeze
from flowbus.events.instance import EventInstance
from flowbus.ids import new_id
from flowbus.runtime.changes import Changeset
from flowbus.stores.memory import MemoryBackend
from flowbus.stores.protocols import EventFilter
from flowbus.stores.sqlite import SqliteBackend

START = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)

events = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["s1", "s2"]), st.integers(0, 50)), max_size=40
)
filters = st.builds(
    EventFilter,
    type=st.none() | st.sampled_from(["A", "B", "Z"]),
    source=st.none() | st.sampled_from(["s1", "s2"]),
    correlation_id=st.none(),
    since=st.none() | st.integers(0, 50).map(lambda m: START + dt.timedelta(minutes=m)),
    until=st.none() | st.integers(0, 50).map(lambda m: START + dt.timedelta(minutes=m)),
)


def instance(event_type: str, source: str, minute: int) -> EventInstance:
    event_id = new_id()
    return EventInstance(
        id=event_id, type=event_type, version=1, source=source, time=START + dt.timedelta(minutes=minute),
        data=freeze({}), correlation_id=event_id, causation_id=None, depth=0,
    )  # fmt: skip


def wanted(event: EventInstance, where: EventFilter) -> bool:
    return (
        (where.type is None or event.type == where.type)
        and (where.source is None or event.source == where.source)
        and (where.since is None or event.time >= where.since)
        and (where.until is None or event.time < where.until)
    )


async def walk(backend, where: EventFilter, size: int) -> list[str]:
    found: list[str] = []
    cursor = None
    for _ in range(1000):  # a bound: a cursor that never ends is a failure, not a hang
        page = await backend.list_events(where, before=cursor, limit=size)
        found += [e.id for e in page]
        if len(page) < size:
            return found
        cursor = page[-1].id
    raise AssertionError("the pages never ended")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(made=events, where=filters, size=st.integers(1, 7))
def test_pages_hold_exactly_the_filtered_events_newest_first(made, where, size):
    stored = [instance(*spec) for spec in made]
    expected = [e.id for e in sorted(stored, key=lambda e: e.id, reverse=True) if wanted(e, where)]

    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            for backend in (MemoryBackend("p"), SqliteBackend(Path(folder) / "flowbus.db", "p")):
                try:
                    await backend.apply(Changeset(events=stored))
                    assert await walk(backend, where, size) == expected, type(backend).__name__
                finally:
                    await backend.close()

    asyncio.run(check())
