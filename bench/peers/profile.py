"""Where a Worker's time goes per page: a V8 CPU profile of its isolate on workerd (DevTools'
sampling profiler, through wrangler's inspector proxy), summed by kind of code.

Starts the bench origin and one Worker (nudge, or bench/peers' pass-through for the floor) as
bench/peers/run.py does, warms it up, then samples every 50 us while one visitor (cookies kept)
asks for the 20 KB page `--requests` times. Prints, per request: the Python interpreter and
Pyodide's C (wasm), Pyodide's JS glue, the runtime's built-ins by name (fetch, Cache API match,
HTMLRewriter's transform, console calls), native time V8 cannot attribute, and idle. The sampler
sees wall time on the isolate's thread: on a busy machine all of it grows; compare Workers within
one run, or against the pass-through's profile taken right after.

    .venv/bin/python bench/peers/profile.py [--worker nudge|pass-through] [--requests 300] [--var NAME=VALUE]
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers import launch, run  # noqa: E402

HERE = Path(__file__).resolve().parent


def kind(frame: dict[str, Any]) -> str:
    """What a sampled frame is: wasm (Python and Pyodide's C), Pyodide's JS, or a runtime built-in."""
    name, url = frame["functionName"], frame["url"]
    if name.startswith(("wasm-function", "js-to-wasm")):
        return "wasm: the Python interpreter, Pyodide's C"
    if name.startswith("wasm-to-js") or "pyodide" in url:
        return "Pyodide's JS glue (FFI, event loop)"
    if name in ("(idle)", "(program)", "(garbage collector)"):
        return {"(idle)": "idle", "(program)": "native, unattributed", "(garbage collector)": "GC"}[name]
    if not url:
        return f"built-in: {name or '(anonymous)'}"
    return f"JS: {url.rsplit('/', 1)[-1]}"


def summary(profile: dict[str, Any], requests: int) -> list[tuple[str, float]]:
    """(kind, ms per request) by time, from the profile's samples and their time deltas."""
    frames = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    spent: collections.Counter[str] = collections.Counter()
    for sample, delta in zip(profile["samples"], profile["timeDeltas"][1:] + [0], strict=True):
        spent[kind(frames[sample])] += delta
    return [(name, us / 1000 / requests) for name, us in spent.most_common()]


def profiled(worker: launch.Worker, cmd: list[str], requests: int, out: Path) -> float:
    """Profiles `requests` pages of one visitor; returns the seconds they took."""
    port = cmd[cmd.index("--inspector-port") + 1]
    target = run.Target(worker.name, worker.url)
    for _ in range(30):  # warm: the isolate's first requests are not the typical page
        run.timed_get(target, run.PAGES[0][1])
    node = str(launch.ROOT / "node_modules" / ".bin" / "node")
    with subprocess.Popen([node, str(HERE / "cpuprofile.mjs"), port, str(out)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as sampler:
        assert sampler.stdin is not None and sampler.stdout is not None
        if sampler.stdout.readline().strip() != "STARTED":
            raise RuntimeError("the inspector did not start profiling")
        started = time.perf_counter()
        for _ in range(requests):
            run.timed_get(target, run.PAGES[0][1])
        took = time.perf_counter() - started
        sampler.stdin.close()
        if sampler.wait(120) != 0:
            raise RuntimeError("the profile was not written")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--worker", choices=("nudge", "pass-through"), default="nudge")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--var", action="append", default=[],
                    help="NAME=VALUE for the Worker (e.g. NUDGE_PAGE_LOG_PERCENT=0)")
    ap.add_argument("--keep", type=Path, help="also write the .cpuprofile here (opens in Chrome DevTools)")
    args = ap.parse_args()
    print(f"bench/peers/profile at the start: {launch.loadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as state, launch.origin() as origin:
        name, config, variables, workerd, snapshot = next(s for s in run.specs(origin) if s[0] == args.worker)
        variables = {**variables, **dict(v.split("=", 1) for v in args.var)}
        cmd = launch.wrangler_command(Path(state), config, variables, python=True)
        env = launch.wrangler_environment(workerd, "" if snapshot is not None and snapshot.is_file() else "off")
        with launch.worker(name, cmd, env, run.PAGES[0][1]) as worker:
            out = args.keep or Path(state) / "worker.cpuprofile"
            took = profiled(worker, cmd, args.requests, out)
            rows = summary(json.loads(out.read_text()), args.requests)
    print(f"{args.worker} {' '.join(args.var)}: {args.requests} pages of 20 KB in {took:.2f} s "
          f"({1000 * took / args.requests:.2f} ms each, wall); sampled time per page:")
    for label, ms in rows[:16]:
        print(f"  {ms:7.3f} ms  {label}")
    print(f"bench/peers/profile at the end: {launch.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
