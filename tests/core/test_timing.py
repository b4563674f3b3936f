"""OwnTime: nudge's own time on a page counts Python between awaits and handler calls, never
the waits."""

from __future__ import annotations

import asyncio

import pytest

from nudge.timing import OwnTime
from tests.support.clock import FakeClock


def test_waiting_for_io_is_not_counted_and_handler_calls_are() -> None:
    timer = FakeClock()
    clock = OwnTime(timer)
    timer.now += 0.002  # reading the cookie, starting the origin fetch

    async def origin() -> str:
        timer.now += 0.500  # the origin takes half a second
        return "response"

    assert asyncio.run(clock.waiting(origin())) == "response"
    timer.now += 0.001  # deciding, rendering
    assert clock.pause() == pytest.approx(0.003)  # what the Server-Timing header carries
    timer.now += 0.050  # the runtime sends the headers; the body starts to stream
    for cost in (0.0002, 0.0003, 0.0001):  # head, body, the document's end
        started = clock.timer()
        timer.now += cost
        clock.handler_call(started)
    assert clock.calls == 3 and clock.seconds == pytest.approx(0.0036)


def test_pause_and_resume_are_idempotent_and_a_failed_wait_resumes() -> None:
    timer = FakeClock()
    clock = OwnTime(timer)
    timer.now += 1
    clock.pause()
    timer.now += 5
    assert clock.pause() == 1  # already paused: the 5 s are not counted
    clock.resume()
    clock.resume()  # already counting: the start is not moved
    timer.now += 2

    async def failing() -> None:
        raise ValueError("KV threw")

    try:
        asyncio.run(clock.waiting(failing()))
    except ValueError:
        pass
    timer.now += 1
    assert clock.pause() == 4  # 1 + 2 before the wait, 1 after it
