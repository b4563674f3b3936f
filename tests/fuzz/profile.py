"""How long the fuzz targets run: a short profile in `make test` (seconds in total) and, with
HYPOTHESIS_PROFILE=long (`make fuzz`), at least 100,000 cases per target (`medium`: 5,000). Each target counts the
cases it actually ran, and conftest.py prints the counts at the end of the session."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings

PROFILES = {
    "short": settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]),
    "medium": settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]),
    "long": settings(max_examples=100_000, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]),
}
NAME = os.environ.get("HYPOTHESIS_PROFILE", "short")
if NAME not in PROFILES:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={NAME!r}: the fuzz targets know {', '.join(PROFILES)}")
ACTIVE = PROFILES[NAME]
CASES: Counter[str] = Counter()


def fuzz(*strategies: Any, **named: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`@given(...)` under the active profile, counting every case the target runs."""

    def wrap(test: Callable[..., None]) -> Callable[..., None]:
        name = test.__name__.removeprefix("test_")
        CASES[name] += 0  # listed even if it never ran

        @functools.wraps(test)
        def counted(*args: Any, **kwargs: Any) -> None:
            CASES[name] += 1
            test(*args, **kwargs)

        return ACTIVE(given(*strategies, **named)(counted))

    return wrap
