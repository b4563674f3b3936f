"""Start and stop the long-running processes (nudge on workerd, demo shop) that tests and benchmarks drive."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A started process; its stdout and stderr are collected by a background thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        """Everything the process printed so far."""
        with self._changed:
            return "".join(self._lines)

    def wait_for_output(self, text: str, timeout: float = 10) -> None:
        """Block until a line of output contains `text`; raise if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        scanned = 0
        with self._changed:
            while True:
                if any(text in line for line in self._lines[scanned:]):
                    return
                scanned = len(self._lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise RuntimeError(
                        f"{text!r} not seen in output of {self.proc.args!r} "
                        f"(exit code {self.proc.poll()}):\n{''.join(self._lines)}"
                    )
                self._changed.wait(min(remaining, 0.2))

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM the process group, SIGKILL it if it lingers; return the exit code."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the process leads its own session (start_new_session)
    except ProcessLookupError:
        pass


@contextmanager
def running(
    cmd: Sequence[str],
    ready: str,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] = REPO_ROOT,
) -> Iterator[Process]:
    """Run `cmd` until the block ends; enter once `ready` appears in its output.

    `env` adds to (and overrides) this process's environment. Raises with the
    captured output if the process exits or `ready` does not appear in `timeout` s.
    """
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    process = Process(proc)
    try:
        process.wait_for_output(ready, timeout)
        yield process
    finally:
        process.stop()


# Each line that carries a measurement event when the Worker runs with NUDGE_LOCAL_EVENTS=log.
EVENT_PREFIX = '{"nudge":"event",'
# Only wrangler's debug log names the Worker's own port (behind wrangler's proxy, which re-chunks
# responses): {"type":"reloadComplete","proxyData":{"userWorkerUrl":{...,"port":"43121"}...
_WORKER_PORT = re.compile(r'"reloadComplete".*?"userWorkerUrl":\{[^}]*"port":"(\d+)"')


def edge_command(port: int, state: Path, variables: Mapping[str, str], config: Path | None = None) -> list[str]:
    """`wrangler dev` as `make dev` runs it: workerd offline (scripts/workerd passes the locally built
    Pyodide bundle), Pyodide's development build selected on the command line only."""
    cmd = [str(REPO_ROOT / "node_modules" / ".bin" / "wrangler"), "dev", "--ip", "127.0.0.1",
           "--port", str(port), "--inspector-port", str(free_port()), "--persist-to", str(state),
           "--show-interactive-dev-session=false", "--log-level", "debug",
           "--compatibility-flags", "python_workers", "--compatibility-flags", "python_workers_development"]
    if config is not None:
        cmd += ["--config", str(config)]
    for name, value in variables.items():
        cmd += ["--var", f"{name}:{value}"]
    return cmd


def checkout_python_path() -> dict[str, str]:
    """PYTHONPATH for a Python process this harness starts (the demo shop, the origin, `nudge`): this
    checkout's src/, root and tools/, not whichever checkout the virtualenv has nudge installed from."""
    return {"PYTHONPATH": os.pathsep.join(str(REPO_ROOT / part) for part in ("src", ".", "tools"))}


def edge_environment() -> dict[str, str]:
    """Node 22 from node_modules first on PATH (wrangler needs it), workerd through our wrapper,
    and nothing that reaches for the network."""
    bin_dir = str(REPO_ROOT / "node_modules" / ".bin")
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "MINIFLARE_WORKERD_PATH": str(REPO_ROOT / "scripts" / "workerd"),
            "WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false",
            # wrangler's local trace collector runs inside the Worker's workerd and fails under
            # concurrency ("Cannot perform I/O on behalf of a different request"); Cloudflare has none.
            "X_LOCAL_OBSERVABILITY": "false",
            "WRANGLER_LOG_PATH": str(Path(os.environ.get("TMPDIR", "/tmp")) / "nudge-wrangler-logs")}


@contextmanager
def local_edge(origin: str, state: Path, secret: str, *flags: str,
               config: Path | None = None) -> Iterator[tuple[str, Process]]:
    """(base URL, process) of nudge on workerd (`wrangler dev`) in front of `origin`, signing with
    `secret`, its KV, cache and queues persisted in `state`. `flags` are `--var NAME:VALUE` pairs;
    `config` another wrangler.toml (quick_batches_config). The URL is the Worker's own port, not
    wrangler's proxy: bytes and chunks as the Worker sends them. Events written to Analytics Engine
    are echoed to the output (see `events`)."""
    variables = {"ORIGIN_URL": origin, "NUDGE_SECRET": secret, "NUDGE_LOCAL_EVENTS": "log"}
    pairs = list(flags)
    while pairs:
        flag, value, *pairs = pairs
        if flag != "--var":
            raise ValueError(f"local_edge takes --var NAME:VALUE pairs, not {flag!r}")
        name, _, setting = value.partition(":")
        variables[name] = setting
    cmd = edge_command(free_port(), state, variables, config)
    with running(cmd, '"reloadComplete"', timeout=180, env=edge_environment()) as process:
        match = _WORKER_PORT.search(process.output())
        if match is None:
            raise RuntimeError(f"the Worker's port is not in wrangler's output:\n{process.output()}")
        url = f"http://127.0.0.1:{match.group(1)}"
        _wait_until_serving(url, process)
        yield url, process


# The follow-up consumer's batch timeout in the tests that wait for deliveries (wrangler.toml: 5 s).
QUICK_BATCH_SECONDS = 1


def quick_batches_config() -> Path:
    """wrangler.toml with the queue consumer's max_batch_timeout cut to QUICK_BATCH_SECONDS, for
    the tests that wait for follow-ups. Locally every message waits out the batch timeout before it
    is handled (Miniflare, like Queues, fills a batch first), a part of each delivery that
    NUDGE_LOCAL_QUEUE_DELAY_CAP cannot shorten. It lies beside wrangler.toml, as wrangler finds the
    Worker's files from the config's folder; git ignores it. Written only when it differs, in one
    rename, so edges starting meanwhile read a whole file."""
    text = (REPO_ROOT / "wrangler.toml").read_text(encoding="utf-8")
    quick, found = re.subn(r"(?m)^max_batch_timeout = \d+$", f"max_batch_timeout = {QUICK_BATCH_SECONDS}", text)
    if found != 1:
        raise RuntimeError("wrangler.toml has no one `max_batch_timeout = N` line to shorten")
    path = REPO_ROOT / ".wrangler-quick-batches.toml"
    if not path.is_file() or path.read_text(encoding="utf-8") != quick:
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(quick, encoding="utf-8")
        partial.replace(path)
    return path


def _wait_until_serving(url: str, process: Process, timeout: float = 120) -> None:
    """Blocks until the Worker answers at all (Python is loaded on the first request)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_nudge/health", timeout=timeout):
                return
        except urllib.error.HTTPError:
            return  # an answer (a missing secret, say), which is what we wait for
        except OSError as exc:
            if time.monotonic() > deadline or process.proc.poll() is not None:
                raise RuntimeError(f"nudge on workerd did not answer: {exc}\n{process.output()}") from exc
        time.sleep(0.2)  # the port refused: the runtime is still starting


def events(process: Process) -> list[dict[str, object]]:
    """The Analytics Engine data points the Worker wrote so far (echoed with NUDGE_LOCAL_EVENTS=log)."""
    found = []
    for line in process.output().splitlines():
        at = line.find(EVENT_PREFIX)
        if at != -1:
            found.append(json.loads(line[at:])["point"])
    return found


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[str]:
    """Serves `server` (an HTTP server bound to 127.0.0.1) from a daemon thread until the block
    ends; its base URL."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = server.server_address
        assert isinstance(address, tuple)  # an IP server: (host, port)
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
