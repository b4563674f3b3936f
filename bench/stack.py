"""Processes the benchmarks run: an origin (the bench origin or the demo shop) and the local edge
in front of it, each its own process, stopped when the block ends."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.support import processes  # noqa: E402
from tests.support.processes import Process, free_port, running  # noqa: E402

SECRET = "bench-secret-0123456789"


@contextmanager
def bench_origin() -> Iterator[str]:
    port = free_port()
    with running([sys.executable, "-m", "bench.origin", "--port", str(port)], "bench origin on"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def demo_shop() -> Iterator[str]:
    port = free_port()
    with running([sys.executable, "-m", "demo_shop", "--port", str(port)], "Uvicorn running"):
        yield f"http://127.0.0.1:{port}"


def local_edge(origin: str, state: Path, *flags: str) -> ContextManager[tuple[str, Process]]:
    """(base URL, process) of the local edge in front of `origin`, its KV etc. in `state`."""
    return processes.local_edge(origin, state, SECRET, *flags)


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method; the value itself for a single sample)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]
