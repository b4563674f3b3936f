"""Cold start of nudge on workerd: from starting `wrangler dev` to the first 200 of a page.

Each trial starts a fresh `wrangler dev` (as the tests and `make dev` do: workerd offline with the
locally built Pyodide bundle, a fresh state directory) in front of the bench origin and measures:
- start -> ready: until wrangler reports the Worker loaded ("reloadComplete"), in two parts
  (the process tree is watched every 10 ms): until the workerd process that runs the Worker
  appears (Node and wrangler starting, the build step, bundling), then until ready (workerd
  loading the Worker: Pyodide booted, the workers SDK and src/entry.py with the nudge package
  imported, all before workerd serves, as on Cloudflare);
- the first request after ready: a 20 KB category page through the Worker's own port, sent at
  once; its time to the last byte is the rest of the cold start (the isolate's app built on the
  first request: the bundled rule set parsed and compiled) plus the page itself;
- the next request (a warm isolate);
- start -> first 200: the two together, what a developer waits for.
No memory snapshot is used (workerd can take one, `--python-save-snapshot`; Cloudflare deploys
Python Workers with one taken after the top-level imports, so there the imports are paid at
deploy, not per cold start): this is the cost without one.

    .venv/bin/python bench/cold_start.py [--trials 5]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import SECRET, bench_origin, edge_command, edge_environment, free_port, loadavg, running, worker_pid  # noqa: E402

# Only wrangler's debug log names the Worker's own port (see tools/nudge_tools/processes.py).
WORKER_PORT = re.compile(r'"reloadComplete".*?"userWorkerUrl":\{[^}]*"port":"(\d+)"')
PAGE = "/collections/sneakers?kb=20"


def get(port: int, path: str) -> tuple[int, float]:
    """(status, ms to the last byte) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
    start = time.perf_counter()
    conn.request("GET", path, headers={"user-agent": "Mozilla/5.0 Chrome/142", "accept": "text/html"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, (time.perf_counter() - start) * 1000


class Births(threading.Thread):
    """When each workerd process started by the `wrangler dev` that persists to `state` was first
    seen (perf_counter seconds): /proc scanned every 10 ms for workerd whose parent names `state`."""

    def __init__(self, state: str) -> None:
        super().__init__(daemon=True)
        self.state = state.encode()
        self.seen: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.01):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) in self.seen:
                    continue
                try:
                    if (entry / "comm").read_text().strip() != "workerd":
                        continue
                    stat = (entry / "stat").read_text()
                    parent = stat[stat.rindex(")") + 2:].split()[1]
                    if self.state in Path(f"/proc/{parent}/cmdline").read_bytes():
                        self.seen[int(entry.name)] = time.perf_counter()
                except (OSError, ValueError):
                    continue


def trial(origin: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as state:
        cmd = edge_command(free_port(), Path(state), {"ORIGIN_URL": origin, "NUDGE_SECRET": SECRET})
        births = Births(state)
        births.start()
        start = time.perf_counter()
        with running(cmd, '"reloadComplete"', timeout=180, env=edge_environment()) as process:
            ready = time.perf_counter()
            births.stopping.set()
            match = WORKER_PORT.search(process.output())
            if match is None:
                raise RuntimeError(f"the Worker's port is not in wrangler's output:\n{process.output()}")
            port = int(match.group(1))
            born = births.seen.get(worker_pid(f"http://127.0.0.1:{port}", process), float("nan"))
            status, first = get(port, PAGE)
            served = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"the first request answered {status}:\n{process.output()[-4000:]}")
            status, warm = get(port, PAGE)
            if status != 200:
                raise RuntimeError(f"the second request answered {status}")
    return {"workerd": (born - start) * 1000, "loading": (ready - born) * 1000, "ready": (ready - start) * 1000,
            "first": first, "after_ready": (served - ready) * 1000, "warm": warm, "total": (served - start) * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    print(f"at the start: {loadavg()}")
    with bench_origin() as origin:
        runs = [trial(origin) for _ in range(args.trials)]

    def show(label: str, key: str) -> None:
        values = [r[key] for r in runs]
        print(f"  {label:44}{statistics.median(values):8.0f} ms  (min {min(values):.0f}, max {max(values):.0f})")

    print(f"nudge on workerd, cold start, median of {len(runs)} fresh `wrangler dev` processes (no memory snapshot):")
    show("start -> ready", "ready")
    show("  start -> the Worker's workerd process exists", "workerd")
    show("  then workerd loading the Worker (Pyodide, imports)", "loading")
    show("first request after ready (builds the app)", "first")
    show("start -> first 200 of a page", "total")
    values = [r["warm"] for r in runs]
    print(f"  {'the next request (warm isolate)':44}{statistics.median(values):8.1f} ms  "
          f"(min {min(values):.1f}, max {max(values):.1f})")
    print(f"at the end: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
