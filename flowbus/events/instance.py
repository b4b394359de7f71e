"""The immutable record of one published event."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from flowbus.events.frozen import FrozenDict, thaw


class EventInstance(NamedTuple):
    """One published event: immutable, timestamped, traceable.

    ``correlation_id`` is the id of the first event of the chain (its own id for a root event);
    ``causation_id`` is the id of the event or message whose run published this one;
    ``depth`` counts the events before this one in the chain (0 for a root event).

    A NamedTuple, as the other records made on every publish are: built in C, immutable.
    """

    id: str
    type: str
    version: int
    source: str
    time: dt.datetime
    data: FrozenDict
    correlation_id: str
    causation_id: str | None = None
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The instance as plain data (JSON-ready apart from Decimal and datetime values)."""
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "source": self.source,
            "time": self.time,
            "data": thaw(self.data),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "depth": self.depth,
        }
