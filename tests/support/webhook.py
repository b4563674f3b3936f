"""A scriptable webhook receiver for follow-up tests: answers each delivery with the next scripted
status (optionally after a pause), and records every request it got, with when it arrived."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nudge_tools.processes import serving


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    at: float  # time.time() when the request arrived (before any scripted pause)


@dataclass
class Hook:
    url: str
    script: list[tuple[int, float]]  # (status, seconds to wait first), used in order; the last repeats
    received: list[Received] = field(default_factory=list)

    def wait_for(self, count: int, seconds: float = 60, output: Callable[[], str] | None = None) -> list[Received]:
        """The requests received once there are at least `count`; raises when `seconds` pass first
        (with `output()`, the sender's output, in the message)."""
        deadline = time.monotonic() + seconds
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(self.received)} requests in {seconds} s, expected "
                                     f"{count}" + (f"; the sender's output:\n{output()}" if output else ""))
            time.sleep(0.05)
        return list(self.received)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def serving_hook(*script: int | tuple[int, float]) -> Iterator[Hook]:
    """A receiver at `hook.url` answering 200 unless scripted otherwise."""
    steps = [s if isinstance(s, tuple) else (s, 0.0) for s in script] or [(200, 0.0)]
    hook = Hook("", steps)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                status, pause = hook.script.pop(0) if len(hook.script) > 1 else hook.script[0]
            time.sleep(pause)  # the scripted slow receiver
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except OSError:
                pass  # the sender gave up waiting
            hook.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status, arrived))

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as url:
        hook.url = f"{url}/hook"
        yield hook
