"""Start and stop the long-running processes (local edge, demo shop) that tests drive."""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
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


@contextmanager
def local_edge(origin: str, state: Path, secret: str, *flags: str) -> Iterator[tuple[str, Process]]:
    """(base URL, process) of the local edge runtime in front of `origin`, signing with `secret`,
    its KV, cache, analytics and queues in `state`; `flags` are more server.mjs options."""
    port = free_port()
    cmd = ["node", str(REPO_ROOT / "local-edge" / "server.mjs"), "--port", str(port),
           "--var", f"ORIGIN_URL:{origin}", "--var", f"NUDGE_SECRET:{secret}", "--persist-to", str(state), *flags]
    with running(cmd, "ready on", timeout=120) as process:
        yield f"http://127.0.0.1:{port}", process


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[str]:
    """Serves `server` (an HTTP server bound to 127.0.0.1) from a daemon thread until the block
    ends; its base URL."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
