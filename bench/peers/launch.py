"""What bench/peers starts and reads from outside: the origin and each Worker under `wrangler dev`
(workerd offline with the locally built Pyodide bundle, as the runtime tests start nudge), the
Worker's own port (from wrangler's debug log; wrangler's proxy re-chunks responses), the workerd
process that serves it (whether it loaded a memory snapshot, its CPU time), the machine's load.
Self-contained: bench/ does not import the tests' harness."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# {"type":"reloadComplete","proxyData":{"userWorkerUrl":{...,"port":"43121"}...
_WORKER_PORT = re.compile(r'"reloadComplete".*?"userWorkerUrl":\{[^}]*"port":"(\d+)"')
# The origin: the one tests and benches share, serving shop pages of ?kb= KB on every path.
ORIGIN_COMMAND = [sys.executable, "-m", "nudge_tools.origin", "--sized"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loadavg() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} CPUs"


class Started:
    """A process in its own session, its output collected by a thread; stop() ends the group."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
            start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line containing `text`, once printed; raises if the process ends first."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((line for line in list(self.lines) if text in line), None)
            if found is not None:
                return found
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self._reader.is_alive()):
                raise RuntimeError(f"{text!r} not seen from {self.proc.args!r}:\n{self.output()[-4000:]}")
            time.sleep(0.01)

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self._reader.join(5)


@contextmanager
def origin() -> Iterator[str]:
    started = Started([*ORIGIN_COMMAND, "--port", str(free_port())],
                      env={"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tools'}"})
    try:
        line = started.wait_for("origin on http://", 30)
        yield line.split("origin on ", 1)[1].strip()
    finally:
        started.stop()


@dataclass
class Worker:
    name: str
    url: str  # the Worker's own port
    pid: int  # the workerd process serving it
    ready_ms: float  # start -> wrangler reports the Worker loaded
    first_200_ms: float  # start -> the first 200 of a page
    snapshot: bool  # workerd resumed Python from a memory snapshot
    process: Started


def wrangler_command(state: Path, config: Path, variables: Mapping[str, str], python: bool) -> list[str]:
    """`wrangler dev` as the runtime tests run it (tests/support/processes.py edge_command)."""
    cmd = [str(ROOT / "node_modules" / ".bin" / "wrangler"), "dev", "--config", str(config),
           "--ip", "127.0.0.1", "--port", str(free_port()), "--inspector-port", str(free_port()),
           "--persist-to", str(state), "--show-interactive-dev-session=false", "--log-level", "debug"]
    if python:  # Pyodide's development build: the locally built bundle (see /work/shared/NOTES.md)
        cmd += ["--compatibility-flags", "python_workers", "--compatibility-flags", "python_workers_development"]
    for name, value in variables.items():
        cmd += ["--var", f"{name}:{value}"]
    return cmd


def wrangler_environment(workerd: Path, snapshot: str = "") -> dict[str, str]:
    bin_dir = str(ROOT / "node_modules" / ".bin")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "MINIFLARE_WORKERD_PATH": str(workerd),
           "WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false",
           "X_LOCAL_OBSERVABILITY": "false",
           "WRANGLER_LOG_PATH": str(Path(os.environ.get("TMPDIR", "/tmp")) / "nudge-wrangler-logs")}
    if snapshot:
        env["NUDGE_PYTHON_SNAPSHOT"] = snapshot
    return env


@contextmanager
def worker(name: str, cmd: Sequence[str], env: Mapping[str, str], page: str) -> Iterator[Worker]:
    """The Worker `cmd` starts, once it answered `page` with a 200; stopped when the block ends."""
    start = time.perf_counter()
    started = Started(cmd, env)
    try:
        line = started.wait_for('"reloadComplete"', 180)
        ready = time.perf_counter()
        match = _WORKER_PORT.search(line)
        if match is None:
            raise RuntimeError(f"no Worker port in wrangler's output:\n{started.output()[-4000:]}")
        url = f"http://127.0.0.1:{match.group(1)}"
        _wait_for_200(url, page, started)
        first = time.perf_counter()
        pid = serving_pid(int(match.group(1)), started.proc.pid)
        snapshot = b"--python-load-snapshot" in Path(f"/proc/{pid}/cmdline").read_bytes()
        yield Worker(name, url, pid, (ready - start) * 1000, (first - start) * 1000, snapshot, started)
    finally:
        started.stop()


def _wait_for_200(url: str, page: str, started: Started, timeout: float = 120) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
            conn.request("GET", page)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                return
            raise RuntimeError(f"{url}{page} answered {resp.status}:\n{started.output()[-4000:]}")
        except OSError:
            if time.monotonic() > deadline or started.proc.poll() is not None:
                raise
            time.sleep(0.01)  # refused: workerd is not listening yet


def take_snapshot(cmd: Sequence[str], env: Mapping[str, str], page: str) -> Path:
    """Starts the Worker once with NUDGE_PYTHON_SNAPSHOT=save (the workerd wrappers then write a
    baseline snapshot, keyed by the Worker's code) and waits until the file stops growing."""
    with worker("snapshot", cmd, {**env, "NUDGE_PYTHON_SNAPSHOT": "save"}, page) as w:
        flags = Path(f"/proc/{w.pid}/cmdline").read_bytes().split(b"\0")
        folder = next(f for f in flags if f.startswith(b"--python-snapshot-dir=")).split(b"=", 1)[1]
        target = Path(folder.decode()) / "snapshot.bin"
        deadline, size = time.monotonic() + 120, -1
        while not target.is_file() or target.stat().st_size != size or size <= 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no snapshot written to {target}")
            size = target.stat().st_size if target.is_file() else -1
            time.sleep(0.5)
    return target


def serving_pid(port: int, root_pid: int) -> int:
    """Of the workerd processes under `root_pid` (wrangler runs one for its proxy too), the one
    listening on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for pid in _descendants(root_pid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "workerd" and any(
                    os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:
            continue
    raise RuntimeError(f"no workerd under pid {root_pid} listens on port {port}")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def cpu_ns(pid: int) -> int:
    """CPU time `pid` has used so far, all its threads (ended ones too), in ns: the process's CPU
    clock (clock_gettime on the clock id the kernel derives from a pid: CPUCLOCK_SCHED, ns
    resolution, unlike /proc/<pid>/stat's 10 ms ticks)."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def settle(pids: Sequence[int], window: float = 0.25, quiet_ns: int = 500_000, timeout: float = 15) -> None:
    """Returns once each process used less than `quiet_ns` of CPU in a `window` (the Workers' work
    after their responses, waitUntil tasks and log flushes, has ended), or after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = [cpu_ns(pid) for pid in pids]
        time.sleep(window)  # the measuring window itself
        if all(cpu_ns(pid) - used < quiet_ns for pid, used in zip(pids, before, strict=True)):
            return


def nudge_snapshot() -> Path:
    """The snapshot scripts/workerd loads for nudge's code as it is now (its key, computed as that
    script does: sha256 of src/ and python_modules/ .py files in path order)."""
    key = subprocess.run(
        ["bash", "-c",
         "find src python_modules -name '*.py' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    return _pyodide_cache() / "snapshot" / key / "snapshot.bin"


def passthrough_snapshot() -> Path:
    """The snapshot bench/peers/workerd loads for the pass-through Worker (it says which)."""
    out = subprocess.run([str(ROOT / "bench" / "peers" / "workerd"), "snapshot-path"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def _pyodide_cache() -> Path:
    return Path(os.environ.get("NUDGE_PYODIDE_CACHE", str(ROOT / "build" / "pyodide")))
