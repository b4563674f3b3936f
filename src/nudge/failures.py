"""How nudge fails: open. Its own failure must never cost the shopper the page (or the Worker an
uncaught error that breaks a stream mid-page), so a failing step is logged and the caller goes on
with what it had. One context manager instead of a `try/except Exception` at every such step.
"""

from __future__ import annotations

import logging
from types import TracebackType

log = logging.getLogger("nudge")


class fail_open:  # noqa: N801 - used like contextlib's lower-case managers
    """`with fail_open("what failed") as step:` swallows an Exception raised in the block and logs
    "nudge: what failed" with its traceback; afterwards `step.failed` says whether it did. With
    `expected=True` (an outage nudge plans for: KV, the ledger, a write) the line is
    "nudge: what failed: <error>" at `level`, without a traceback. BaseExceptions (cancellation,
    exit) pass through."""

    def __init__(self, what: str, *, expected: bool = False, level: int = logging.ERROR) -> None:
        self.what, self.expected, self.level = what, expected, level
        self.failed = False

    def __enter__(self) -> fail_open:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self.failed = True
        if self.expected:
            log.log(self.level, "nudge: %s: %s", self.what, exc)
        else:
            log.error("nudge: %s", self.what, exc_info=(kind, exc, tb))  # type: ignore[arg-type]
        return True
