"""The short load run (bench/load.py prints the long one): mixed shopper journeys at concurrency
32 through nudge on workerd in front of the demo shop, with no errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import JOURNEY, run_load

pytestmark = pytest.mark.runtime

# Memory is not asserted here: from outside, workerd shows only its process's RSS, which also
# grows for a hello-world Python Worker on the local runtime (32-51 KB per request, no plateau within
# 4,000 requests); bench/load.py prints nudge's figures beside it (README, "Performance").


CONCURRENCY = 32
# Two whole journeys per shopper: the first one is the warm-up (bench/load.py), the second runs
# at full concurrency on warm heaps, long enough for the memory samples asked for below.
REQUESTS = 2 * CONCURRENCY * JOURNEY


def test_mixed_journeys_at_concurrency_32_without_errors(tmp_path: Path) -> None:
    result = run_load(REQUESTS, CONCURRENCY, tmp_path)
    assert result.errors == [] and result.requests == REQUESTS
    assert len(result.after_warm_up()) >= 10, "too few memory samples after the warm-up"
