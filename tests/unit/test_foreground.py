"""A worker sharing its event loop with the API gives way to the requests in hand, for no longer
than its last slice of work."""

from __future__ import annotations

import asyncio

from flowbus.foreground import Foreground


async def test_with_no_request_in_hand_it_gives_one_turn_of_the_loop():
    foreground = Foreground()
    turns = []

    async def other() -> None:
        turns.append("other")

    task = asyncio.create_task(other())
    await foreground.give_way(3600)
    assert turns == ["other"]
    await task


async def test_it_waits_until_the_last_request_in_hand_is_answered():
    foreground = Foreground()
    foreground.started()
    foreground.started()
    waiting = asyncio.create_task(foreground.give_way(3600))
    for _ in range(10):
        await asyncio.sleep(0)
    foreground.finished()
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done(), "one request is still in hand"
    foreground.finished()
    await asyncio.wait_for(waiting, 5)
    assert foreground.in_hand == 0


async def test_a_request_that_never_ends_holds_it_no_longer_than_asked():
    foreground = Foreground()
    foreground.started()
    await asyncio.wait_for(foreground.give_way(0.01), 5)
    assert foreground.in_hand == 1
