"""Processes the benchmarks run: an origin (tools/nudge_tools/origin.py with its sized shop pages, or
the demo shop) and nudge on workerd (`wrangler dev`, tools/nudge_tools/processes.py) in front of it,
each its own process, stopped when the block ends; and what can be read about them from outside: the
workerd process that runs the Worker, its memory and CPU time (/proc), nudge's own page log lines,
the machine's load."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "tools")]

from nudge_tools import processes  # noqa: E402
from nudge_tools.processes import Process, checkout_python_path, edge_command, edge_environment, free_port, running  # noqa: E402

__all__ = ["Process", "edge_command", "edge_environment", "free_port", "running"]

SECRET = "bench-secret-0123456789"
PAGE_LINE = '{"nudge":"page",'


@contextmanager
def bench_origin() -> Iterator[str]:
    port = free_port()
    with running([sys.executable, "-m", "nudge_tools.origin", "--sized", "--port", str(port)], "origin on",
                 env=checkout_python_path()):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def demo_shop() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "demo_shop", "--port", str(port)]
    with running(command, "Uvicorn running", env=checkout_python_path()):
        yield f"http://127.0.0.1:{port}"


def local_edge(origin: str, state: Path, *flags: str) -> ContextManager[tuple[str, Process]]:
    """(base URL, process) of nudge on workerd in front of `origin`, its KV etc. in `state`; the URL
    is the Worker's own port (not wrangler's proxy). `flags`: `--var NAME:VALUE` pairs."""
    return processes.local_edge(origin, state, SECRET, *flags)


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method; the value itself for a single sample)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def loadavg() -> str:
    """The machine's 1, 5 and 15 minute load averages and its CPU count, to print with figures."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} CPUs"


class PageLog:
    """nudge's own log line for each page ({"nudge":"page", "ms": own time, "handlers": ...}) in the
    output of `wrangler dev`, read incrementally."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._read = 0  # characters of output scanned

    def update(self) -> list[dict[str, Any]]:
        output = self.process.output()
        end = output.rfind("\n") + 1
        for line in output[self._read:end].splitlines():
            at = line.find(PAGE_LINE)
            if at != -1:
                self.lines.append(json.loads(line[at:]))
        self._read = max(self._read, end)
        return self.lines

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The lines once there are at least `count` (a page logs when its body has streamed, which
        may be just after the client has the last byte)."""
        deadline = time.monotonic() + timeout
        while len(self.update()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.lines)} page log lines, expected {count}:\n"
                                   f"{self.process.output()[-4000:]}")
            time.sleep(0.005)
        return self.lines


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def worker_pid(url: str, process: Process) -> int:
    """The pid of the workerd process that runs the Worker: of the processes under `wrangler dev`
    (wrangler also runs a workerd for its own proxy), the one listening on the Worker's port."""
    inodes = _listening_inodes(int(url.rsplit(":", 1)[1]))
    for pid in _descendants(process.proc.pid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "workerd":
                continue
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    raise RuntimeError(f"no workerd process under pid {process.proc.pid} listens on {url}")


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` now (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time `pid` has used so far (/proc/<pid>/stat, clock-tick resolution)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
