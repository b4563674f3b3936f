"""Load: mixed shopper journeys through the local edge in front of the demo shop, at a fixed
concurrency, counting errors and sampling the runtime's memory (RSS of its node process).

Each virtual shopper keeps its cookies and walks: home, a category, three products, a beacon
(dwell and a product view), add to cart (the shop's form POST, watched by the edge), the cart,
checkout, the order (POST, then the thank-you page) and a purchase beacon: 13 requests.
Anything but the status the journey expects (200 pages, 204 beacons, 303 form posts) is an error.

Memory: the runtime logs its RSS, V8 heap and Pyodide's wasm memory every 0.25 s
(`--memory-log-ms`); each sample is placed at the number of requests logged before it. After the
warm-up (the first 20% of requests, at least every shopper's first whole journey: Pyodide's heap
and V8's grow to their working size) the
least-squares slope of RSS against requests says whether the runtime leaks. RSS swings by tens of
MB with V8's garbage collection; Pyodide's wasm memory does not (it never shrinks, and every
Python object a leaked proxy keeps alive is in it), so it is the sharp test for leaked proxies.

    .venv/bin/python bench/load.py [--requests 10000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import demo_shop, local_edge  # noqa: E402

CONFIG = re.compile(r'<script type="application/json" id="nudge-config"[^>]*>(.*?)</script>')
PRODUCTS = [("sneakers", "aero-runner", "SNK-001"), ("sneakers", "court-classic", "SNK-002"),
            ("sneakers", "trail-sprint", "SNK-003"), ("boots", "ridge-hiker", "BT-001"),
            ("boots", "city-chelsea", "BT-002"), ("accessories", "merino-crew-socks", "ACC-001")]
JOURNEY = 13  # requests per shopper
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Safari/537.36"


MEMORY = re.compile(r"^memory rss=(\d+) heap_used=(\d+) external=(\d+) wasm=(\d+)$")
ACCESS = re.compile(r"^(GET|POST) \S+ \d{3} \d+ms")


@dataclass(frozen=True)
class Sample:
    done: int  # requests the runtime had logged before this sample
    rss: int
    heap: int  # V8 heap used
    external: int  # memory outside V8's heap held by JS objects: wasm memories, buffers
    wasm: int  # Pyodide's wasm memory


@dataclass
class LoadResult:
    requests: int
    errors: list[str]
    seconds: float
    samples: list[Sample]
    warm_up: int  # requests before memory counts

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

    def growth(self, what: str = "wasm") -> float:
        """`what` at the end minus at the end of the warm-up (MB)."""
        after = self.after_warm_up()
        return (getattr(after[-1], what) - getattr(after[0], what)) / 2**20 if after else 0.0

    def floors(self, what: str = "rss", parts: int = 10) -> list[float]:
        """The lowest `what` (MB) in each of `parts` runs of samples after warm-up: the level the
        garbage collector comes back to."""
        mb = [getattr(s, what) / 2**20 for s in self.after_warm_up()]
        size = max(1, len(mb) // parts)
        return [min(mb[i:i + size]) for i in range(0, size * parts, size) if mb[i:i + size]]


def memory_samples(output: str) -> list[Sample]:
    """The runtime's memory lines, each placed after the requests logged before it."""
    samples, done = [], 0
    for line in output.splitlines():
        if ACCESS.match(line):
            done += 1
        elif m := MEMORY.match(line):
            samples.append(Sample(done, int(m[1]), int(m[2]), int(m[3]), int(m[4])))
    return samples


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
        beacon = {"pv": _pv(last), "dwell": 25, "events": [{"type": "view_item", "items": [{"id": sku, "quantity": 1}], "value": 129.0}]}
        await _step(c, counter, "POST", "/_nudge/beacon", 204, json=beacon)
        await _step(c, counter, "POST", "/cart/add", 303, data={"sku": sku, "qty": "1"},
                    headers={"referer": f"{base}/collections/{cat}/products/{slug}"})
        await _step(c, counter, "GET", "/cart", 200)
        await _step(c, counter, "GET", "/checkout", 200)
        order = await _step(c, counter, "POST", "/checkout", 303, data={})
        location = order.headers.get("location", "/checkout/thank-you") if order is not None else "/checkout/thank-you"
        thanks = await _step(c, counter, "GET", location, 200)
        purchase = {"pv": _pv(thanks), "events": [{"type": "purchase", "items": [{"id": sku, "quantity": 1}], "value": 129.0}]}
        await _step(c, counter, "POST", "/_nudge/beacon", 204, json=purchase)
    return counter.started < counter.limit


async def _drive(base: str, counter: _Counter, concurrency: int) -> None:
    shoppers = iter(range(10**9))

    async def worker() -> None:
        while await _journey(base, counter, next(shoppers)):
            pass

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_load(requests: int, concurrency: int, state: Path) -> LoadResult:
    """`requests` requests at `concurrency` through a fresh local edge and demo shop."""
    with demo_shop() as shop, local_edge(shop, state, "--memory-log-ms", "250") as (edge, process):
        counter = _Counter(requests)
        start = time.perf_counter()
        asyncio.run(_drive(edge, counter, concurrency))
        seconds = time.perf_counter() - start
        time.sleep(0.6)  # one more memory line after the last request
        output = process.output()
    worker_errors = [line for line in output.splitlines() if "Worker threw" in line or "Traceback" in line]
    warm_up = max(requests // 5, concurrency * JOURNEY)
    return LoadResult(counter.done, counter.errors + worker_errors, seconds, memory_samples(output), warm_up)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as state:
        result = run_load(args.requests, args.concurrency, Path(state))
    print(f"{result.requests:,} requests at concurrency {args.concurrency} (13-request shopper journeys through "
          f"the local edge in front of the demo shop): {len(result.errors)} errors")
    for error in result.errors[:5]:
        print(f"  {error}")
    print(f"throughput: {result.throughput:.0f} requests/s ({result.seconds:.1f} s)")
    after = result.after_warm_up()
    print(f"runtime memory, {len(result.samples)} samples; warm-up: the first {result.warm_up:,} requests")
    for what, label in (("rss", "RSS"), ("heap", "V8 heap used"), ("external", "external (buffers)"),
                        ("wasm", "Pyodide wasm memory")):
        mb = [getattr(s, what) / 2**20 for s in after]
        tenths = [mb[int(i * (len(mb) - 1) / 9)] for i in range(10)] if mb else []
        print(f"  {label:20} start {getattr(result.samples[0], what) / 2**20:4.0f} MB; after warm-up "
              f"min {min(mb):.0f} max {max(mb):.0f}, in tenths {' '.join(f'{x:.0f}' for x in tenths)}, "
              f"lowest per tenth {' '.join(f'{x:.0f}' for x in result.floors(what))}; "
              f"slope {result.slope(what):+.2f} MB per 1,000 requests")
    return 0 if not result.errors else 1


if __name__ == "__main__":
    sys.exit(main())
