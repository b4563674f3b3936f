"""Time to first byte and total time: origin direct vs through nudge on workerd, same run, for a
20 KB and a 1 MB page; and whether the rewritten page streams when the origin is slow.

Starts the bench origin (tools/nudge_tools/origin.py --sized) and nudge on workerd in front of it (`wrangler dev`,
requests go to the Worker's own port, not wrangler's proxy), warms both, then alternates requests
to the two (so both see the same machine load), a new connection each, one visitor's cookie kept
as a browser would. Prints p50/p99 in milliseconds and the machine's load average.

    .venv/bin/python bench/ttfb.py [--requests 1000] [--pause 1.0]
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

from bench.stack import bench_origin, loadavg, local_edge, pct  # noqa: E402

PAGES = (("20 KB", "/collections/sneakers?kb=20"), ("1 MB", "/collections/sneakers?kb=1024"))


def timed_get(base: str, path: str, cookie: str | None) -> tuple[float, float, int, str | None]:
    """(ttfb ms, total ms, body bytes, nudge Set-Cookie) for one GET on a fresh connection."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
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
        raise RuntimeError(f"GET {path} on {base} answered {resp.status}")
    return ttfb * 1000, total * 1000, len(first) + len(rest), set_cookie


def head_and_whole(base: str, path: str) -> tuple[float, float, bool]:
    """(ms until </head> arrived, ms until the last byte, whether nudge's style was in that head)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    resp = conn.getresponse()
    received, head_at, styled = b"", None, False
    while chunk := resp.read1(65536):
        received += chunk
        if head_at is None and b"</head>" in received:
            head_at, styled = (time.perf_counter() - start) * 1000, b'id="nudge-style"' in received
    conn.close()
    return head_at or float("nan"), (time.perf_counter() - start) * 1000, styled


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--pause", type=float, default=1.0, help="the slow origin's pause after </head>, seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as state, bench_origin() as origin, local_edge(origin, Path(state)) as (edge, _):
        print(f"{args.requests} requests per page and path, alternating origin direct / through nudge on workerd, "
              f"a new connection each; {loadavg()}")
        print(f"{'':44}{'ttfb p50':>10}{'p99':>8}{'total p50':>11}{'p99':>8}  (ms)")
        for label, path in PAGES:
            cookie = None
            for _ in range(20):  # warm-up
                timed_get(origin, path, None)
                cookie = (timed_get(edge, path, cookie)[3] or cookie or "").split(";")[0] or None
            runs: dict[str, dict[str, list[float]]] = {
                "direct": {"ttfb": [], "total": []}, "edge": {"ttfb": [], "total": []}}
            sizes = {}
            for _ in range(args.requests):
                t, total, sizes["direct"], _c = timed_get(origin, path, None)
                runs["direct"]["ttfb"].append(t), runs["direct"]["total"].append(total)
                t, total, sizes["edge"], set_cookie = timed_get(edge, path, cookie)
                cookie = set_cookie.split(";")[0] if set_cookie else cookie
                runs["edge"]["ttfb"].append(t), runs["edge"]["total"].append(total)
            for who, name in (("direct", "origin direct"), ("edge", "through nudge on workerd")):
                r = runs[who]
                print(f"{label + ' ' + name + f' ({sizes[who]:,} B)':44}"
                      f"{pct(r['ttfb'], 50):10.2f}{pct(r['ttfb'], 99):8.2f}"
                      f"{pct(r['total'], 50):11.2f}{pct(r['total'], 99):8.2f}")
            added = [e - d for e, d in zip(runs["edge"]["total"], runs["direct"]["total"], strict=True)]
            added_ttfb = [e - d for e, d in zip(runs["edge"]["ttfb"], runs["direct"]["ttfb"], strict=True)]
            print(f"{label + ' added by nudge (median of pairs)':44}"
                  f"{statistics.median(added_ttfb):10.2f}"
                  f"{'':8}{statistics.median(added):11.2f}")
        slow = f"/collections/sneakers?kb=20&pause={args.pause}"
        direct = [head_and_whole(origin, slow) for _ in range(3)]
        through = [head_and_whole(edge, slow) for _ in range(3)]
    styled = all(s for _, _, s in through)
    head_ms = statistics.median(h for h, _, _ in through)
    print(f"streaming, origin sends its head, pauses {args.pause:.1f} s, sends the rest (median of 3):")
    print(f"  head with nudge's style through nudge after {head_ms:.1f} ms "
          f"(origin direct {statistics.median(h for h, _, _ in direct):.1f} ms); whole page after "
          f"{statistics.median(w for _, w, _ in through):.1f} ms "
          f"(direct {statistics.median(w for _, w, _ in direct):.1f} ms)")
    streamed = styled and head_ms < args.pause * 1000
    print(f"  the first rewritten bytes left before the origin had finished: {'yes' if streamed else 'NO'}")
    print(f"at the end: {loadavg()}")
    return 0 if streamed else 1


if __name__ == "__main__":
    sys.exit(main())
