"""Security at the boundary, through the Worker in Pyodide: no secret means no personalization
(the origin's responses untouched, one log line), secrets never reach the logs or analytics, origin
redirects never become open redirects, oversized cookies and hostile beacons stay harmless."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.runtime.test_worker import Edge, edge_in_front_of_origin
from tests.support.origin import _Handler
from tests.support.processes import REPO_ROOT, free_port, running

pytestmark = pytest.mark.runtime

# Headers the local runtime's HTTP server sets for any response, whoever made it.
_TRANSPORT = {"date", "connection", "keep-alive", "transfer-encoding", "content-length"}


def _headers(resp: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in resp.headers.multi_items() if k.lower() not in _TRANSPORT)


@pytest.mark.parametrize("secret", ["", " , "])
def test_without_a_secret_every_response_is_the_origins_and_one_line_says_why(tmp_path: Path, secret: str) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", f"NUDGE_SECRET:{secret}") as e, e.client() as c, \
            httpx.Client(base_url=e.origin, timeout=30) as direct:
        for path in ("/page", "/collections/sneakers", "/products/trail-shoe", "/cookies", "/asset.bin", "/error",
                     "/collections/sneakers/products/aero-runner?utm_source=x"):
            via, origin = c.get(path, headers={"cookie": "nudge=forged.value; shop=1"}), direct.get(path)
            assert (via.status_code, via.content) == (origin.status_code, origin.content), path
            assert _headers(via) == _headers(origin), path  # no cookie, no Vary, no Server-Timing, no cache change
        assert c.post("/_nudge/beacon", json={}).status_code == 503
        time.sleep(0.3)  # let the runtime's output thread catch up before counting lines
        lines = [line for line in e.process.output().splitlines() if "NUDGE_SECRET is not set" in line]
    assert len(lines) == 1, lines  # said once for the isolate, not once per request
    assert "personalization is off" in lines[0] and "passes through" in lines[0]
