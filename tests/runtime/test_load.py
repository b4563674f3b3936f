"""The short load run (bench/load.py prints the long one): mixed shopper journeys at concurrency
32 through the local edge in front of the demo shop, with no errors and no leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import run_load

pytestmark = pytest.mark.runtime

# Tolerances, measured on the dev machine (bench/load.py):
# - Pyodide's wasm memory holds Python's heap and never shrinks. It stayed at 24 MB from the end
#   of the warm-up through 10,000 requests; with the page handlers' proxies never destroyed it grew
#   by 5 MB within 1,200 requests. So after the warm-up it must not grow at all.
# - RSS swings with V8's garbage collection: 226-287 MB over those 10,000 requests, a 61 MB band.
#   Growth of the level it comes back to beyond 64 MB is a leak, not garbage awaiting collection.
RSS_TOLERANCE_MB = 64


def test_mixed_journeys_at_concurrency_32_without_errors_or_leaks(tmp_path: Path) -> None:
    result = run_load(1_500, 32, tmp_path)
    assert result.errors == [] and result.requests == 1_500
    assert len(result.after_warm_up()) >= 10, "too few memory samples after the warm-up"
    assert result.growth("wasm") == 0
    floors = result.floors("rss")
    assert floors[-1] - floors[0] < RSS_TOLERANCE_MB
