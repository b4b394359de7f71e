"""Backoff for a store that is away: the waits between tries double, up to a bound.

A store outage (a restart, a failover, a connection the server dropped) is waited out, not
fatal: the backend paces its reconnects with it, and the worker its retries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    """Waits from ``first_s`` doubling up to ``max_s`` after each failure, jittered (so that many
    clients do not come back in step); a success starts again from nothing."""

    def __init__(self, first_s: float = 0.05, max_s: float = 2.0, *, clock: Callable[[], float] = time.monotonic):
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0
        self._clock = clock
        self._next_at = float("-inf")

    def failed(self) -> float:
        """Count a failure; returns how long to wait before the next try."""
        self.failures += 1
        delay = min(self.max_s, self.first_s * 2.0 ** min(self.failures - 1, 30)) * random.uniform(0.5, 1.0)
        self._next_at = self._clock() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self._next_at = float("-inf")

    def remaining_s(self) -> float:
        """How long until the next try is due (0: now)."""
        return max(0.0, self._next_at - self._clock())
