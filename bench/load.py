"""Load: mixed shopper journeys through nudge on workerd in front of the demo shop, at a fixed
concurrency, counting errors and sampling the memory of the workerd process that runs the Worker.

Each virtual shopper keeps its cookies and walks: home, a category, three products, a beacon
(dwell and a product view), add to cart (the shop's form POST, watched by the edge), the cart,
checkout, the order (POST, then the thank-you page) and a purchase beacon: 13 requests.
Anything but the status the journey expects (200 pages, 204 beacons, 303 form posts) is an error,
and so is a Python traceback or an uncaught exception in the runtime's output.

Memory, measured from outside: workerd (run by `wrangler dev`; the bench finds the workerd process
listening on the Worker's port among wrangler's descendants, wrangler's own proxy runs another) has
no memory log, and Pyodide's wasm memory, which the old Node stand-in (local-edge
`--memory-log-ms`) reported, cannot be read from outside the isolate. So this samples the workerd
process's resident set size (VmRSS of /proc/<pid>/status) every 0.25 s, each sample placed at the
number of requests answered so far. That RSS holds V8's heap, Pyodide's wasm memory (which never
shrinks) and workerd's own buffers, for this one Worker. After the warm-up (the first 20% of
requests, at least every shopper's first whole journey: the heaps grow to their working size) the
least-squares slope of RSS against requests, and the lowest RSS per tenth of the run (the level
garbage collection comes back to), say whether the runtime leaks.

    .venv/bin/python bench/load.py [--requests 10000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import demo_shop, loadavg, local_edge, rss_bytes, worker_pid  # noqa: E402

CONFIG = re.compile(r'<script type="application/json" id="nudge-config"[^>]*>(.*?)</script>')
PRODUCTS = [("sneakers", "aero-runner", "SNK-001"), ("sneakers", "court-classic", "SNK-002"),
            ("sneakers", "trail-sprint", "SNK-003"), ("boots", "ridge-hiker", "BT-001"),
            ("boots", "city-chelsea", "BT-002"), ("accessories", "merino-crew-socks", "ACC-001")]
JOURNEY = 13  # requests per shopper
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Safari/537.36"


SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class Sample:
    done: int  # requests answered before this sample
    rss: int  # the Worker's workerd process, bytes


@dataclass
class LoadResult:
    requests: int
    errors: list[str]
    seconds: float
    samples: list[Sample]
    warm_up: int  # requests before memory counts
    peak_rss: int = 0  # VmHWM of the workerd process at the end

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def after_warm_up(self) -> list[Sample]:
        return [s for s in self.samples if s.done >= self.warm_up]

    def slope(self, what: str = "rss") -> float:
        """Least-squares slope of `what` (MB) against requests done (per 1,000), after warm-up."""
        pts = [(s.done / 1000, getattr(s, what) / 2**20) for s in self.after_warm_up()]
        if len(pts) < 2:
            return 0.0
        mx = sum(x for x, _ in pts) / len(pts)
        my = sum(y for _, y in pts) / len(pts)
        var = sum((x - mx) ** 2 for x, _ in pts)
        return sum((x - mx) * (y - my) for x, y in pts) / var if var else 0.0

    def growth(self, what: str = "rss") -> float:
        """`what` at the end minus at the end of the warm-up (MB)."""
        after = self.after_warm_up()
        return (getattr(after[-1], what) - getattr(after[0], what)) / 2**20 if after else 0.0

    def floors(self, what: str = "rss", parts: int = 10) -> list[float]:
        """The lowest `what` (MB) in each of `parts` runs of samples after warm-up: the level the
        garbage collector comes back to."""
        mb = [getattr(s, what) / 2**20 for s in self.after_warm_up()]
        size = max(1, len(mb) // parts)
        return [min(mb[i:i + size]) for i in range(0, size * parts, size) if mb[i:i + size]]


class _Sampler(threading.Thread):
    """Samples the RSS of `pid` every SAMPLE_SECONDS until stopped."""

    def __init__(self, pid: int, counter: _Counter) -> None:
        super().__init__(daemon=True)
        self.pid, self.counter = pid, counter
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.samples.append(Sample(self.counter.done, rss_bytes(self.pid)))
            except (OSError, RuntimeError):  # the process ended: wrangler reloaded, or it crashed
                self.counter.errors.append(f"the Worker's workerd process {self.pid} ended during the run")
                return
            if self.stopping.wait(SAMPLE_SECONDS):
                return


def _peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


@dataclass
class _Counter:
    limit: int
    done: int = 0
    started: int = 0
    errors: list[str] = field(default_factory=list)

    def claim(self) -> bool:
        if self.started >= self.limit:
            return False
        self.started += 1
        return True


async def _step(client: httpx.AsyncClient, counter: _Counter, method: str, path: str, expect: int,
                **kwargs: object) -> httpx.Response | None:
    if not counter.claim():
        return None
    try:
        r = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        if r.status_code != expect:
            counter.errors.append(f"{method} {path}: {r.status_code}, expected {expect}")
        return r
    except httpx.HTTPError as exc:
        counter.errors.append(f"{method} {path}: {exc!r}")
        return None
    finally:
        counter.done += 1


def _pv(page: httpx.Response | None) -> int:
    found = CONFIG.search(page.text) if page is not None else None
    return int(json.loads(found.group(1))["pv"]) if found else 1


async def _journey(base: str, counter: _Counter, shopper: int) -> bool:
    """One shopper's visit; False once the request budget is spent."""
    cat, slug, sku = PRODUCTS[shopper % len(PRODUCTS)]
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"user-agent": UA}) as c:
        steps = [("GET", "/", 200, {}), ("GET", f"/collections/{cat}", 200, {})]
        steps += [("GET", f"/collections/{c_}/products/{s_}", 200, {})
                  for c_, s_, _ in (PRODUCTS[(shopper + k) % len(PRODUCTS)] for k in range(3))]
        last = None
        for method, path, expect, kw in steps:
            last = await _step(c, counter, method, path, expect, **kw) or last
            if counter.started >= counter.limit:
                return False
        view = {"type": "view_item", "items": [{"id": sku, "quantity": 1}], "value": 129.0}
        beacon = {"pv": _pv(last), "dwell": 25, "events": [view]}
        await _step(c, counter, "POST", "/_nudge/beacon", 204, json=beacon)
        await _step(c, counter, "POST", "/cart/add", 303, data={"sku": sku, "qty": "1"},
                    headers={"referer": f"{base}/collections/{cat}/products/{slug}"})
        await _step(c, counter, "GET", "/cart", 200)
        await _step(c, counter, "GET", "/checkout", 200)
        order = await _step(c, counter, "POST", "/checkout", 303, data={})
        location = order.headers.get("location", "/checkout/thank-you") if order is not None else "/checkout/thank-you"
        thanks = await _step(c, counter, "GET", location, 200)
        bought = {"type": "purchase", "items": [{"id": sku, "quantity": 1}], "value": 129.0}
        purchase = {"pv": _pv(thanks), "events": [bought]}
        await _step(c, counter, "POST", "/_nudge/beacon", 204, json=purchase)
    return counter.started < counter.limit


async def _drive(base: str, counter: _Counter, concurrency: int) -> None:
    shoppers = iter(range(10**9))

    async def worker() -> None:
        while await _journey(base, counter, next(shoppers)):
            pass

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_load(requests: int, concurrency: int, state: Path) -> LoadResult:
    """`requests` requests at `concurrency` through a fresh nudge on workerd and demo shop."""
    with demo_shop() as shop, local_edge(shop, state) as (edge, process):
        pid = worker_pid(edge, process)
        counter = _Counter(requests)
        sampler = _Sampler(pid, counter)
        sampler.start()
        start = time.perf_counter()
        try:
            asyncio.run(_drive(edge, counter, concurrency))
        finally:
            seconds = time.perf_counter() - start
            sampler.stopping.set()
            sampler.join()
        peak = _peak_rss(pid)
        output = process.output()
    if output.count('"reloadComplete"') > 1:
        counter.errors.append("wrangler reloaded the Worker during the run (a file under src/ changed?)")
    worker_errors = [line for line in output.splitlines() if "Traceback" in line or "Uncaught" in line]
    warm_up = max(requests // 5, concurrency * JOURNEY)
    return LoadResult(counter.done, counter.errors + worker_errors, seconds, sampler.samples, warm_up, peak)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as state:
        result = run_load(args.requests, args.concurrency, Path(state))
    print(f"{result.requests:,} requests at concurrency {args.concurrency} (13-request shopper journeys through "
          f"nudge on workerd in front of the demo shop): {len(result.errors)} errors; {loadavg()}")
    for error in result.errors[:5]:
        print(f"  {error}")
    print(f"throughput: {result.throughput:.0f} requests/s ({result.seconds:.1f} s)")
    mb = [s.rss / 2**20 for s in result.after_warm_up()]
    tenths = [mb[int(i * (len(mb) - 1) / 9)] for i in range(10)] if mb else []
    print(f"RSS of the Worker's workerd process, {len(result.samples)} samples every {SAMPLE_SECONDS} s; "
          f"warm-up: the first {result.warm_up:,} requests")
    print(f"  start {result.samples[0].rss / 2**20:.0f} MB, peak (VmHWM) {result.peak_rss / 2**20:.0f} MB")
    if mb:
        print(f"  after warm-up min {min(mb):.0f} max {max(mb):.0f} MB, "
              f"in tenths {' '.join(f'{x:.0f}' for x in tenths)}, "
              f"lowest per tenth {' '.join(f'{x:.0f}' for x in result.floors())}; "
              f"slope {result.slope():+.2f} MB per 1,000 requests; end minus end of warm-up {result.growth():+.1f} MB")
    else:
        print("  no samples after the warm-up (too few requests)")
    return 0 if not result.errors else 1


if __name__ == "__main__":
    sys.exit(main())
