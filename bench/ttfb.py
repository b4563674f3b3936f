"""Time to first byte and total time: origin direct vs through the local edge, same run.

Starts the demo shop and the local edge, warms both, then alternates requests to the two
(so both see the same machine load) and prints p50/p99 in milliseconds.

    .venv/bin/python bench/ttfb.py [--requests 300] [--path /collections/sneakers/products/...]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.processes import REPO_ROOT, free_port, running  # noqa: E402


def timed_get(port: int, path: str, cookie: str | None) -> tuple[float, float, int, str | None]:
    """(ttfb ms, total ms, body bytes, nudge Set-Cookie) for one GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Accept-Encoding": "identity", **({"Cookie": cookie} if cookie else {})}
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    first = resp.read(1)
    ttfb = time.perf_counter() - start
    rest = resp.read()
    total = time.perf_counter() - start
    set_cookie = next((v for k, v in resp.getheaders() if k.lower() == "set-cookie" and v.startswith("nudge=")), None)
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path} on :{port} answered {resp.status}")
    return ttfb * 1000, total * 1000, len(first) + len(rest), set_cookie


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--path", default="/collections/sneakers/products/cloud-runner")
    args = ap.parse_args()
    shop_port, edge_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as kv_dir, \
            running([sys.executable, "-m", "demo_shop", "--port", str(shop_port)], "Uvicorn running"), \
            running(["node", str(REPO_ROOT / "local-edge" / "server.mjs"), "--port", str(edge_port),
                     "--var", f"ORIGIN_URL:http://127.0.0.1:{shop_port}", "--persist-to", kv_dir],
                    "ready on", timeout=120):
        cookie = None
        for _ in range(20):  # warm-up; keep the visitor's cookie as a browser would
            timed_get(shop_port, args.path, None)
            _, _, _, set_cookie = timed_get(edge_port, args.path, cookie)
            cookie = set_cookie.split(";")[0] if set_cookie else cookie
        direct: dict[str, list[float]] = {"ttfb": [], "total": []}
        edge: dict[str, list[float]] = {"ttfb": [], "total": []}
        sizes = {}
        for _ in range(args.requests):
            t, total, size, _ = timed_get(shop_port, args.path, None)
            direct["ttfb"].append(t), direct["total"].append(total)
            sizes["origin"] = size
            t, total, size, set_cookie = timed_get(edge_port, args.path, cookie)
            cookie = set_cookie.split(";")[0] if set_cookie else cookie
            edge["ttfb"].append(t), edge["total"].append(total)
            sizes["edge"] = size
    print(f"GET {args.path}: {args.requests} requests each, alternating, new connection per request")
    print(f"body bytes: origin {sizes['origin']}, through edge {sizes['edge']}")
    print(f"{'':22}{'p50 ms':>10}{'p99 ms':>10}")
    for label, data in (("origin direct", direct), ("through local edge", edge)):
        for metric in ("ttfb", "total"):
            print(f"{label + ' ' + metric:22}{pct(data[metric], 50):10.2f}{pct(data[metric], 99):10.2f}")
    print(f"{'added ttfb (p50)':22}{pct(edge['ttfb'], 50) - pct(direct['ttfb'], 50):10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
