"""nudge side by side with its peers on the same runtime and origin: origin direct, a pass-through
Python Worker (bench/peers/passthrough), GrowthBook's edge app (npm @growthbook/edge-cloudflare with
one local visual experiment, bench/peers/growthbook) and nudge (the repo's Worker) twice: as
deployed, and with its one log line per page off (NUDGE_PAGE_LOG_PERCENT=0). Locally that line costs
far more than on Cloudflare: `wrangler dev` keeps DevTools attached to the Worker to relay its
console, and the inspector then records every console call with its stack (bench/peers/profile.py
shows it). Each Worker on workerd under its own `wrangler dev`, requests to the Worker's own port.

For a 20 KB and a 1 MB shop page: requests alternated request by request across the five targets
(the order rotated each round, so all see the same machine load), a new connection each, each
target's cookies kept as a browser would. Prints TTFB (to the first body byte) and total time p50/p99,
CPU per request and the ratios to the pass-through Worker, with the load average the run saw; and
each Worker's cold start (start of `wrangler dev` -> first 200 of a page, with the memory snapshot
for the Python Workers, taken first when missing).

CPU per request: the CPU time of the workerd process that serves the Worker (all its threads: the
process's CPU clock, ns), read before and after a page size's run (each time once the process is
quiet again, so work a Worker does after its responses counts), minus what that process spends idle
(measured over --idle seconds, scaled to the run's length), divided by the requests it served.
An upper bound for the Worker itself: the same process runs Miniflare's local KV/cache/queue
simulators and workerd's HTTP handling. The origin's CPU is not counted.

    .venv/bin/python bench/peers/run.py [--requests 300 | --full] [--no-snapshots]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers import launch  # noqa: E402

HERE = Path(__file__).resolve().parent
PAGES = (("20 KB", "/collections/sneakers?kb=20"), ("1 MB", "/collections/sneakers?kb=1024"))
SECRET = "bench-peers-secret-0123456789abcdef"
GROWTHBOOK_CHANGE = b"Sneakers: 20% off today"  # growthbook/payload.json's headline
NO_LINE = "nudge, no log"  # nudge with its page log line off (NUDGE_PAGE_LOG_PERCENT=0), see the docstring
ORDER = ("origin", "pass-through", "GrowthBook", "nudge", NO_LINE)


@dataclass
class Target:
    name: str
    url: str
    pid: int | None = None  # the workerd serving it; None for the origin
    idle_ns_per_s: float = 0.0
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    size: int = 0
    cpu_ms: float = float("nan")  # per request


def timed_get(target: Target, path: str) -> tuple[float, float, bytes]:
    """(ms to the first body byte, ms to the last, body) of one GET on a new connection."""
    host, port = target.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Accept-Encoding": "identity", "Accept": "text/html", "User-Agent": "Mozilla/5.0 Chrome/142"}
    if target.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in target.cookies.items())
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    first = resp.read(1)
    ttfb = time.perf_counter() - start
    body = first + resp.read()
    total = time.perf_counter() - start
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path} through {target.name} answered {resp.status}")
    for value in resp.headers.get_all("Set-Cookie") or []:
        name, _, rest = value.partition("=")
        target.cookies[name.strip()] = rest.split(";", 1)[0]
    return ttfb * 1000, total * 1000, body


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def specs(origin: str) -> list[tuple[str, Path, dict[str, str], Path, Path | None]]:
    """(name, wrangler.toml, variables, workerd wrapper, the memory snapshot the wrapper loads for
    the Worker's code as it is now; None for the JS Worker)."""
    scripts_workerd = launch.ROOT / "scripts" / "workerd"
    return [
        ("pass-through", HERE / "passthrough" / "wrangler.toml", {"ORIGIN_URL": origin}, HERE / "workerd",
         launch.passthrough_snapshot()),
        ("GrowthBook", HERE / "growthbook" / "wrangler.toml", {"PROXY_TARGET": origin}, scripts_workerd, None),
        ("nudge", launch.ROOT / "wrangler.toml", {"ORIGIN_URL": origin, "NUDGE_SECRET": SECRET}, scripts_workerd,
         launch.nudge_snapshot()),
        (NO_LINE, launch.ROOT / "wrangler.toml",
         {"ORIGIN_URL": origin, "NUDGE_SECRET": SECRET, "NUDGE_PAGE_LOG_PERCENT": "0"}, scripts_workerd,
         launch.nudge_snapshot()),
    ]


@contextmanager
def workers(origin: str, state: Path, snapshots: bool) -> Iterator[list[launch.Worker]]:
    """The Workers in front of `origin`, started one after the other (each cold start alone);
    a Python Worker's memory snapshot is taken first when there is none for its code."""
    page = PAGES[0][1]
    with ExitStack() as stack:
        started = []
        for name, config, variables, workerd, snapshot in specs(origin):
            cmd = launch.wrangler_command(state / name, config, variables, python=snapshot is not None)
            # "off" for the JS Worker too: scripts/workerd would hand it nudge's snapshot flags
            env = launch.wrangler_environment(workerd, "" if snapshots and snapshot is not None else "off")
            if snapshot is not None and snapshots and not snapshot.is_file():
                print(f"  {name}: no memory snapshot for this code yet, taking one ({snapshot})", flush=True)
                launch.take_snapshot(cmd, env, page)
            started.append(stack.enter_context(launch.worker(name, cmd, env, page)))
        yield started


def check_pages(targets: list[Target]) -> None:
    """Each target answers each page as it should: the pass-through with the origin's bytes,
    GrowthBook with its experiment's change made, nudge with a page of its own."""
    for _, path in PAGES:
        bodies = {t.name: timed_get(t, path)[2] for t in targets}
        if bodies["pass-through"] != bodies["origin"]:
            raise RuntimeError(f"the pass-through Worker changed {path}")
        if GROWTHBOOK_CHANGE not in bodies["GrowthBook"]:
            raise RuntimeError(f"GrowthBook's experiment did not change {path}")
        for name in ("nudge", NO_LINE):
            if bodies[name] == bodies["origin"]:
                print(f"  note: {name} answered {path} with the origin's bytes unchanged")


def idle_rates(targets: list[Target], seconds: float) -> None:
    """CPU each Worker's workerd uses while no request comes (timers, Miniflare's simulators)."""
    workers_ = [t for t in targets if t.pid is not None]
    launch.settle([t.pid for t in workers_ if t.pid is not None])
    before = {t.name: launch.cpu_ns(t.pid) for t in workers_ if t.pid is not None}
    time.sleep(seconds)  # a measurement window, not a wait for a state
    for t in workers_:
        assert t.pid is not None
        t.idle_ns_per_s = (launch.cpu_ns(t.pid) - before[t.name]) / seconds


def run_page(targets: list[Target], path: str, requests: int, warmup: int) -> dict[str, Sample]:
    """`requests` GETs of `path` per target, alternated, the order rotated each round."""
    for _ in range(warmup):
        for t in targets:
            timed_get(t, path)
    samples = {t.name: Sample() for t in targets}
    pids = [t.pid for t in targets if t.pid is not None]
    launch.settle(pids)  # the warm-up's after-response work is not counted
    cpu_before = {t.name: launch.cpu_ns(t.pid) for t in targets if t.pid is not None}
    started = time.perf_counter()
    for i in range(requests):
        for t in targets[i % len(targets):] + targets[:i % len(targets)]:
            ttfb, total, body = timed_get(t, path)
            s = samples[t.name]
            s.ttfb.append(ttfb)
            s.total.append(total)
            s.size = len(body)
    elapsed = time.perf_counter() - started
    launch.settle(pids)  # the last requests' after-response work is counted
    for t in targets:
        if t.pid is not None:
            used = launch.cpu_ns(t.pid) - cpu_before[t.name] - t.idle_ns_per_s * elapsed
            samples[t.name].cpu_ms = used / requests / 1e6
    return samples


def report(label: str, samples: dict[str, Sample], requests: int) -> None:
    base = samples["pass-through"]
    b_ttfb, b_total = pct(base.ttfb, 50), pct(base.total, 50)
    print(f"\n{label} page, {requests} requests per target, alternated (ms; x = ratio to the pass-through, "
          f"+ = p50 added over it)")
    print(f"{'':14}{'bytes':>10}{'ttfb p50':>10}{'p99':>8}{'total p50':>11}{'p99':>8}{'cpu/req':>9}"
          f"{'ttfb x':>9}{'+ms':>7}{'total x':>9}{'+ms':>7}{'cpu x':>7}{'+ms':>7}")
    for name in ORDER:
        s = samples[name]
        ttfb, total = pct(s.ttfb, 50), pct(s.total, 50)
        cpu = f"{s.cpu_ms:9.2f}" if s.cpu_ms == s.cpu_ms else f"{'-':>9}"
        cpu_ratio = (f"{s.cpu_ms / base.cpu_ms:7.2f}{s.cpu_ms - base.cpu_ms:+7.2f}" if s.cpu_ms == s.cpu_ms
                     else f"{'-':>7}{'-':>7}")
        print(f"{name:14}{s.size:10,}{ttfb:10.2f}{pct(s.ttfb, 99):8.2f}{total:11.2f}{pct(s.total, 99):8.2f}{cpu}"
              f"{ttfb / b_ttfb:9.2f}{ttfb - b_ttfb:+7.2f}{total / b_total:9.2f}{total - b_total:+7.2f}{cpu_ratio}")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="per target and page size (default 300)")
    ap.add_argument("--full", action="store_true", help="1,000 requests per target and page size")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measured per Worker")
    ap.add_argument("--no-snapshots", action="store_true", help="start the Python Workers without a memory snapshot")
    args = ap.parse_args()
    requests = 1000 if args.full else args.requests
    print(f"bench/peers at the start: {launch.loadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as state, launch.origin() as origin, \
            workers(origin, Path(state), not args.no_snapshots) as started:
        print("cold start, each `wrangler dev` started alone "
              "(ms from start: wrangler ready / first 200 of the 20 KB page):")
        for w in started:
            print(f"  {w.name:14}{w.ready_ms:8.0f}{w.first_200_ms:8.0f}   "
                  f"{'memory snapshot' if w.snapshot else 'JS Worker' if w.name == 'GrowthBook' else 'no snapshot'}")
        targets = [Target("origin", origin)] + [Target(w.name, w.url, w.pid) for w in started]
        check_pages(targets)
        idle_rates(targets, args.idle)
        print("idle CPU of each Worker's workerd (ms/s, subtracted from cpu/req): "
              + ", ".join(f"{t.name} {t.idle_ns_per_s / 1e6:.2f}" for t in targets if t.pid is not None))
        for label, path in PAGES:
            report(label, run_page(targets, path, requests, args.warmup), requests)
            print(f"  {launch.loadavg()}", flush=True)
    print(f"\nbench/peers at the end: {launch.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
