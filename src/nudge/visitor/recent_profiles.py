"""The profiles an isolate read from KV or wrote there in the last minute, so a visitor's next
pages in the same isolate decide without waiting for KV.

Serving a profile up to a minute old is the staleness Workers KV itself already has: a read at a
location is cached there for at least 60 s (KV's minimum `cacheTtl`), so another location's write
may be unseen for that long anyway. nudge's decisions are built for it: the visit in progress lives
in the session cookie, and every profile write merges into what KV holds, so an older read delays a
count, never corrupts one. A visit's first page always reads KV (its one write must merge into the
freshest value); so does a page whose isolate holds nothing for the visitor.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

__all__ = ["KV_STALENESS", "RecentProfiles"]

KV_STALENESS = 60  # seconds: Workers KV's minimum cacheTtl, the age a KV read may have anyway
MAX_PROFILES = 2048  # visitors kept per isolate (a stored profile is a few hundred bytes)


class RecentProfiles:
    """Visitor id -> the profile's bytes as KV holds them, for KV_STALENESS seconds."""

    def __init__(self, size: int = MAX_PROFILES, ttl: float = KV_STALENESS,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._held: TTLCache[str, bytes] = TTLCache(size, ttl, timer)

    def get(self, visitor: str) -> bytes | None:
        """The profile read or written in the last KV_STALENESS seconds; None: ask KV."""
        return self._held.get(visitor)

    def keep(self, visitor: str, stored: bytes | None) -> None:
        """What KV answered for (or was just given for) the visitor; an absent profile is not
        kept (a new visitor's first page writes one, which is)."""
        if stored:
            self._held[visitor] = stored
        else:
            self._held.pop(visitor, None)

    def forget(self, visitor: str) -> None:
        """The visitor's profile was erased (or replaced in a way this isolate did not see)."""
        self._held.pop(visitor, None)
