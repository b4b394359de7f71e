"""The backoff that paces reconnects and a worker's retries while the store is away."""

from __future__ import annotations

import pytest

from flowbus.stores.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_waits_double_up_to_the_bound_jittered_and_a_success_starts_again():
    clock = Clock()
    backoff = Backoff(first_s=0.1, max_s=1.0, clock=clock)
    assert backoff.remaining_s() == 0.0  # nothing failed yet: try now
    waits = [backoff.failed() for _ in range(8)]
    for failure, wait in enumerate(waits):
        full = min(1.0, 0.1 * 2**failure)
        assert full / 2 <= wait <= full
    assert max(waits) <= 1.0 and waits[-1] >= 0.5  # bounded, and still there
    assert backoff.remaining_s() == pytest.approx(waits[-1])
    clock.now += waits[-1]
    assert backoff.remaining_s() == 0.0
    backoff.succeeded()
    assert backoff.failures == 0 and backoff.remaining_s() == 0.0
    assert backoff.failed() <= 0.1
