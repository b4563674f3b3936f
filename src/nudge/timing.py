"""nudge's own time on one page, for Server-Timing and the log line.

A Worker's requests interleave on one thread, so wall time from arrival to the last byte says
nothing about what nudge costs. What does: the stretches of Python between the request's awaits
(no other request can run inside one), plus every HTMLRewriter handler call while the body
streams, after `fetch` has returned. Waiting for the origin or KV is not nudge's time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class OwnTime:
    """Started on creation; paused across awaits; handler calls are added one by one."""

    __slots__ = ("seconds", "calls", "timer", "_since")

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self.seconds = 0.0
        self.calls = 0  # handler calls HTMLRewriter made into nudge
        self.timer = timer
        self._since: float | None = timer()

    def pause(self) -> float:
        """Stops counting (no-op when already paused); the seconds so far."""
        if self._since is not None:
            self.seconds += self.timer() - self._since
            self._since = None
        return self.seconds

    def resume(self) -> None:
        if self._since is None:
            self._since = self.timer()

    async def waiting(self, awaitable: Awaitable[T]) -> T:
        """Awaits I/O without counting the wait."""
        self.pause()
        try:
            return await awaitable
        finally:
            self.resume()

    def handler_call(self, started: float) -> None:
        """One handler call that began at `started` (a reading of `timer`) and ends now."""
        self.calls += 1
        self.seconds += self.timer() - started
