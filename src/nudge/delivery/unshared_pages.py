"""Pages the origin lately said may not be shared, so an isolate does not look for them in the edge
cache for a minute.

Most shops mark their HTML private; nudge would otherwise ask the edge cache for every such page
first, a lookup that cannot hit and that delays the origin fetch behind it. What counts is the
page's own cache policy (guard.shared_by_policy), not one answer's Set-Cookie: a page the origin
shares but answered one visitor with a cookie may still be in the cache for the next. Skipping a
lookup is only ever a lost chance of a hit: fetching from the origin is always right. A page whose
policy changes is looked up again after UNSHARED_FOR seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

__all__ = ["UNSHARED_FOR", "UnsharedPages"]

UNSHARED_FOR = 60  # seconds an isolate trusts the origin's "not shareable" for a URL
MAX_PAGES = 4096  # URLs remembered per isolate


class UnsharedPages:
    """Cache keys (URLs) the origin answered with a page nobody else may be served."""

    def __init__(self, size: int = MAX_PAGES, ttl: float = UNSHARED_FOR,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(size, ttl, timer)

    def worth_looking_up(self, url: str) -> bool:
        """Whether the edge cache may hold the page (the origin has not lately said otherwise)."""
        return url not in self._seen

    def answered(self, url: str, shareable: bool) -> None:
        """What the origin's cache policy for the page said this time."""
        if shareable:
            self._seen.pop(url, None)
        else:
            self._seen[url] = True
