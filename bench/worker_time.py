"""The Worker's own time per page on workerd, the HTMLRewriter handler calls per page, and the wall
time through the Worker's own port.

Starts the bench origin (tools/nudge_tools/origin.py, 20 KB shop pages, answered at once) and nudge on workerd
in front of it (`wrangler dev`, the edge cache off). Visitors walk a 20-page journey (home,
categories, products, search, cart) keeping their cookies, one request at a time, a new connection
each; a warm-up visitor runs first (a warm isolate, as almost every request meets).

The figures per page:
- own time: nudge's own account (`OwnTime`, src/nudge/timing.py) in the page's log line ("ms"):
  the Python between the request's awaits plus every handler call while the body streams. In
  workerd Python's clock is Date.now(): whole milliseconds, so p50 and p99 are whole numbers;
  the mean over all pages is finer;
- before the body: the Server-Timing `nudge;dur=` header (own time until the response was returned);
- handler calls: the log line's "handlers" (nudge counts each call HTMLRewriter makes into it);
- wall TTFB and total: what the client measured against the Worker's own port (wrangler's proxy
  is not in the way), origin included;
- workerd CPU: user + system CPU time of the workerd process that runs the Worker over the timed
  pages, divided by their number (it includes lol-html, the JS glue and workerd's HTTP work; it
  barely moves when other jobs compete for the cores, wall time does).
Then pages with marked prices, JSON-LD and og: meta for a visitor holding a sneakers offer (every
marked price rewritten; a category-less product URL, so nudge reads the facts as they pass).

    .venv/bin/python bench/worker_time.py [--visitors 50] [--priced 50]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import SECRET, PageLog, bench_origin, cpu_seconds, loadavg, local_edge, pct, worker_pid  # noqa: E402
from nudge.offers import OfferTokens, Redeemed  # noqa: E402
from nudge.signing import Signer  # noqa: E402
from nudge_tools.origin_pages import sized_page  # noqa: E402
from nudge_tools.traffic import HONOURED, publish, rules_with_shop  # noqa: E402

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Safari/537.36"
JOURNEY = [
    "/", "/collections/sneakers", "/collections/sneakers/products/aero-runner",
    "/collections/sneakers/products/court-classic", "/collections/sneakers/products/trail-sprint",
    "/collections/sneakers", "/collections/sneakers/products/cloud-knit", "/search?q=trail+shoes",
    "/collections/boots", "/collections/boots/products/ridge-hiker", "/collections/boots/products/city-chelsea",
    "/collections/accessories", "/collections/accessories/products/merino-crew-socks", "/cart", "/",
    "/collections/sneakers", "/collections/sneakers/products/retro-high",
    "/collections/sneakers/products/aero-runner", "/collections/sneakers/products/court-classic", "/cart",
]


@dataclass(frozen=True)
class Page:
    own_ms: float  # nudge's log line
    handlers: int
    before_body_ms: float  # Server-Timing
    ttfb_ms: float  # wall, client side
    total_ms: float


class Visitor:
    """One browser: a cookie jar, requests one at a time, each page matched to its log line."""

    def __init__(self, edge: str, log: PageLog, cookies: dict[str, str] | None = None) -> None:
        self.host, port = edge.removeprefix("http://").split(":")
        self.port = int(port)
        self.log = log
        self.jar = dict(cookies or {})

    def get(self, path: str) -> Page:
        before = len(self.log.update())
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"user-agent": UA, "accept": "text/html", "accept-encoding": "identity"}
        if self.jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(1)
        ttfb = time.perf_counter() - start
        resp.read()
        total = time.perf_counter() - start
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}")
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.jar[key.strip()] = val
        timing = resp.getheader("server-timing") or ""
        dur = timing.split("dur=", 1)[1].split(";", 1)[0] if "dur=" in timing else "nan"
        line = self.log.wait_for(before + 1)[before]
        return Page(float(line["ms"]), int(line["handlers"]), float(dur), ttfb * 1000, total * 1000)


def offer_cookie() -> dict[str, str]:
    """A redeemed 10% sneakers offer, signed as the Worker signs it (same secret)."""
    keys = [SECRET.encode()]
    offers = OfferTokens(Signer(keys, "offer-token"), Signer(keys, "offer-cookie"))
    return {"nudge_offer": offers.cookie(Redeemed("sneakers-exit-intent", "SNEAKERS10", 10, "sneakers",
                                                  int(time.time()) + 3600))}


def row(label: str, values: list[float], digits: int = 2) -> str:
    return (f"{label:46}{pct(values, 50):9.{digits}f}{pct(values, 99):9.{digits}f}"
            f"{statistics.fmean(values):9.{digits}f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visitors", type=int, default=50)
    ap.add_argument("--priced", type=int, default=50, help="pages with prices + JSON-LD (each after a category page)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as rules:
        # rules for a cart that charges X-Nudge-Offer, so the priced pages get their prices rewritten
        publish(rules_with_shop(Path(rules), HONOURED), Path(state))
        measure(args, Path(state))
    return 0


def measure(args: argparse.Namespace, state: Path) -> None:
    with bench_origin() as origin, local_edge(origin, state, "--var", "NUDGE_EDGE_CACHE:off") as (edge, process):
        pid, log = worker_pid(edge, process), PageLog(process)
        warm = Visitor(edge, log)
        for path in JOURNEY:
            warm.get(path)
        load_start = loadavg()
        cpu_before = cpu_seconds(pid)
        pages = []
        for _ in range(args.visitors):
            visitor = Visitor(edge, log)
            pages += [visitor.get(path) for path in JOURNEY]
        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / len(pages)
        priced = []
        for i in range(args.priced):
            visitor = Visitor(edge, log, offer_cookie())
            visitor.get("/collections/sneakers")
            priced.append(visitor.get(f"/products/trail-shoe-{i}?jsonld=1"))
    print(f"nudge on workerd (wrangler dev), {len(pages)} pages ({args.visitors} visitors x {len(JOURNEY)}), "
          f"20 KB each, one at a time; at the start: {load_start}")
    print(f"{'':46}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    print(row("own time per page (target p50 1, p99 3)", [p.own_ms for p in pages]))
    print(row("  before the body (Server-Timing)", [p.before_body_ms for p in pages]))
    print(row("wall TTFB through the Worker's port", [p.ttfb_ms for p in pages]))
    print(row("wall total through the Worker's port", [p.total_ms for p in pages]))
    print(f"{'workerd process CPU per page (mean)':46}{'':18}{cpu_ms:9.2f}")
    if priced:
        print(row("pages with prices + JSON-LD: own time", [p.own_ms for p in priced]))
    calls = [p.handlers for p in pages]
    marked = sized_page(20, True)[1].decode().count("data-nudge-price=")
    print(f"handler calls per page: typical journey {min(calls)}-{max(calls)} (median {statistics.median(calls):g}, "
          f"target <= 5)" + (f"; with {marked} marked prices + JSON-LD + og meta: "
                             f"{statistics.median(p.handlers for p in priced):g}" if priced else ""))
    print(f"at the end: {loadavg()}")


if __name__ == "__main__":
    sys.exit(main())
