"""The local edge runtime (local-edge/server.mjs) runs a Python Worker as Cloudflare would.

Drives tests/runtime/fixture_worker through the runtime, with a stdlib HTTP server
standing in for the origin.
"""

from __future__ import annotations

import gzip
import http.client
import json
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support.processes import REPO_ROOT, Process, free_port, running, serving

pytestmark = pytest.mark.runtime

SERVER = REPO_ROOT / "local-edge" / "server.mjs"
FIXTURE = Path(__file__).parent / "fixture_worker"
SITE_PACKAGES = REPO_ROOT / ".venv" / "lib" / "python3.13" / "site-packages"
GZIP_TEXT = b"<p>" + b"compress me please " * 200 + b"</p>"


# ------------------------------------------------------------------ the origin


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.gates: dict[str, threading.Event] = {}
        self.cacheable_hits = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # no Content-Length on /page: the body ends at close
    server: Upstream

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/page":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"<!doctype html><html><head><title>t</title></head><body>\n<h1>first part</h1>\n")
            self.wfile.flush()
            gate = parse_qs(url.query).get("gate", [""])[0]
            if gate in self.server.gates:
                self.server.gates[gate].wait(5)
            self.wfile.write(b"<p>second part</p>\n</body></html>\n")
        elif url.path == "/cacheable":
            self.server.cacheable_hits += 1
            body = f"cacheable #{self.server.cacheable_hits}".encode()
            self.send_response(200)
            self.send_header("Cache-Control", "public, max-age=600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif url.path == "/gz":
            body = gzip.compress(GZIP_TEXT)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            body = f"from upstream: {self.path}".encode()
            self.send_response(200)
            self.send_header("X-Upstream", "yes")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    with serving(server):
        yield server


# ------------------------------------------------------------------ the runtime


@pytest.fixture(scope="module")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture Worker with a .dev.vars secret beside its config."""
    target = tmp_path_factory.mktemp("fixture") / "worker"
    shutil.copytree(FIXTURE, target)
    (target / ".dev.vars").write_text("FIXTURE_SECRET=from-dev-vars\n")
    return target


def edge_command(worker_dir: Path, port: int, persist: Path, upstream: str, *extra: str) -> list[str]:
    return [
        "node", str(SERVER),
        "--config", str(worker_dir / "wrangler.toml"),
        "--port", str(port),
        "--persist-to", str(persist),
        "--site-packages", str(SITE_PACKAGES),
        "--var", f"UPSTREAM:{upstream}",
        "--var", "FROM_CLI:a:b",
        "--upstream", upstream,
        *extra,
    ]  # fmt: skip


@dataclass
class Edge:
    url: str
    process: Process
    persist: Path


@contextmanager
def start_edge(worker_dir: Path, upstream: str, persist: Path, *extra: str) -> Iterator[Edge]:
    port = free_port()
    cmd = edge_command(worker_dir, port, persist, upstream, *extra)
    with running(cmd, ready=f"ready on http://127.0.0.1:{port}") as process:
        yield Edge(f"http://127.0.0.1:{port}", process, persist)


@pytest.fixture(scope="module")
def edge(worker_dir: Path, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """One runtime for most tests: loading Pyodide takes about 2 s."""
    with start_edge(worker_dir, upstream.url, tmp_path_factory.mktemp("state")) as started:
        yield started


# ------------------------------------------------------------------ HTTP client


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.body)
        return data


def call(
    base: str,
    path: str,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> Reply:
    """One request over http.client: raw headers, no redirects, no decoding."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


# ------------------------------------------------------------------ tests


def test_vars_secrets_and_cli_vars_arrive_as_env(edge: Edge) -> None:
    reply = call(edge.url, "/vars")
    assert reply.status == 200
    assert reply.json() == {
        "GREETING": "hello from vars",
        "FIXTURE_SECRET": "from-dev-vars",
        "FROM_CLI": "a:b",
    }


def test_fetch_gets_a_workers_request_with_headers_and_body(edge: Edge) -> None:
    reply = call(
        edge.url,
        "/request?x=1",
        method="POST",
        headers=[("Cookie", "a=1"), ("Cookie", "b=2"), ("X-Multi", "1"), ("X-Multi", "2")],
        body=b"hello body",
    )
    assert reply.status == 200
    data = reply.json()
    assert data["type"] == "workers.request.Request"
    assert data["is_workers_request"] is True
    assert data["method"] == "POST"
    assert data["url"] == f"{edge.url}/request?x=1"
    assert data["cookie"] == "a=1; b=2"
    assert data["x_multi"] == "1, 2"
    assert data["cf_is_none"] is True
    assert data["body"] == "hello body"


def test_kv_values_cross_into_python_as_sdk_types(edge: Edge) -> None:
    data = call(edge.url, "/kv/types").json()
    assert data["bytes_arrayBuffer"] == {"type": "memoryview", "value": b"\x00\x01bin".hex()}
    assert data["str_text"] == {"type": "str", "value": "h\u00e9llo"}
    assert data["str_arrayBuffer"] == {"type": "memoryview", "value": "h\u00e9llo".encode().hex()}
    assert data["json_json"]["type"] == "JsDict"
    assert data["missing"] == {"type": "NoneType", "value": None}
    assert data["deleted"] == {"type": "NoneType", "value": None}
    meta = data["meta"]["value"]
    assert meta["value"] == {"type": "str", "value": "v"}
    assert meta["metadata"]["value"] == {"m": {"type": "int", "value": 1}}
    keys = data["list"]["value"]["keys"]["value"]
    names = [key["value"]["name"]["value"] for key in keys]
    assert names == ["t:bytes", "t:json", "t:meta", "t:str", "t:ttl"]
    ttl = keys[-1]["value"]["expiration"]["value"]
    assert 100 < ttl - time.time() <= 121


def test_kv_persists_across_restart_and_kv_delay_applies(
    worker_dir: Path, upstream: Upstream, tmp_path: Path
) -> None:
    with start_edge(worker_dir, upstream.url, tmp_path) as first:
        assert call(first.url, "/kv/put?key=kept&value=across-restarts").status == 200
    with start_edge(worker_dir, upstream.url, tmp_path, "--kv-delay-ms", "400") as second:
        started = time.monotonic()
        reply = call(second.url, "/kv/get?key=kept")
        elapsed = time.monotonic() - started
    assert reply.json() == {"value": "across-restarts"}
    assert elapsed >= 0.4


def test_html_rewriter_streams_a_rewritten_upstream_page(edge: Edge, upstream: Upstream) -> None:
    upstream.gates["stream"] = gate = threading.Event()
    url = urlsplit(edge.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.request("GET", "/rewrite?gate=stream")
        response = conn.getresponse()
        assert response.status == 200
        head = b""
        while b"first part" not in head:
            chunk = response.read1(65536)
            assert chunk, head
            head += chunk
        # The upstream is still holding back the rest: the runtime did not buffer.
        assert b"</body>" not in head
        gate.set()
        page = head + response.read()
    finally:
        conn.close()
    assert b'<p>second part</p>\n<p id="injected">added at the edge</p></body>' in page


@pytest.mark.parametrize("via", ["ctx", "module"])
def test_wait_until_work_finishes_after_the_response(edge: Edge, via: str) -> None:
    key = f"waited-{via}"
    assert call(edge.url, f"/wait?key={key}&via={via}").body == b"scheduled"
    assert call(edge.url, f"/kv/get?key={key}").json() == {"value": None}
    deadline = time.monotonic() + 5
    while call(edge.url, f"/kv/get?key={key}").json() != {"value": "done"}:
        assert time.monotonic() < deadline, edge.process.output()
        time.sleep(0.05)


def test_concurrent_requests_are_served_concurrently(edge: Edge) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: call(edge.url, "/slow?ms=700"), range(6)))
    elapsed = time.monotonic() - started
    assert [r.body for r in replies] == [b"slept"] * 6
    assert elapsed < 2.5  # one after another would take 4.2 s


def test_each_set_cookie_arrives_as_its_own_header(edge: Edge) -> None:
    reply = call(edge.url, "/cookies")
    assert reply.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert reply.body == b"cookies"


def test_head_response_has_no_body(edge: Edge) -> None:
    reply = call(edge.url, "/cookies", method="HEAD")
    assert reply.status == 200
    assert reply.body == b""


def test_gzip_upstream_body_is_re_encoded_for_the_client(edge: Edge) -> None:
    reply = call(edge.url, "/gzip", headers=[("Accept-Encoding", "gzip")])
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(reply.body) == GZIP_TEXT


def test_pass_through_on_exception_serves_the_upstream(edge: Edge) -> None:
    reply = call(edge.url, "/boom?q=1")
    assert reply.status == 200
    assert reply.headers["X-Upstream"] == "yes"
    assert reply.body == b"from upstream: /boom?q=1"


def test_exception_without_pass_through_is_a_500(edge: Edge) -> None:
    reply = call(edge.url, "/crash")
    assert reply.status == 500
    edge.process.wait_for_output("RuntimeError: crash")
    edge.process.wait_for_output("GET /crash 500 ")


def test_sigterm_waits_for_wait_until_and_exits_zero(
    worker_dir: Path, upstream: Upstream, tmp_path: Path
) -> None:
    with start_edge(worker_dir, upstream.url, tmp_path) as edge:
        assert call(edge.url, "/wait?key=at-shutdown").status == 200
        started = time.monotonic()
        code = edge.process.stop()
        elapsed = time.monotonic() - started
    assert code == 0, edge.process.output()
    assert elapsed < 3
    # The pending waitUntil (0.3 s, then a KV put) ran before the process left.
    assert (tmp_path / "kv" / "FIXTURE_KV" / "at-shutdown").read_text() == "done"


def cache_path(action: str, key: str, **params: str) -> str:
    """A /cache/<action> call of the fixture Worker (see cache_and_key in its entry.py)."""
    return f"/cache/{action}?{urlencode({'key': key, **params})}"


def is_miss(reply: Reply) -> bool:
    return reply.headers["X-Cache-Miss"] == "1"


@pytest.mark.parametrize("key_as", ["url", "request"])
def test_cache_match_misses_then_returns_what_put_stored(edge: Edge, key_as: str) -> None:
    key = f"round-trip-{key_as}"
    assert is_miss(call(edge.url, cache_path("match", key, key_as=key_as)))
    params = {"cc": "public, max-age=600", "status": "404", "body": "stored body", "key_as": key_as}
    put = call(edge.url, cache_path("put", key, **params))
    assert (put.status, put.body) == (200, b"put")
    # A key given as a string and one given as a Request are the same entry.
    for match_as in ["url", "request"]:
        reply = call(edge.url, cache_path("match", key, key_as=match_as))
        assert reply.status == 404
        assert reply.body == b"stored body"
        assert reply.headers["X-Fixture"] == "cached"
        assert reply.headers["Content-Type"] == "text/plain"
        assert reply.headers["Cache-Control"] == "public, max-age=600"
        assert reply.headers["CF-Cache-Status"] == "HIT"
        assert reply.headers["X-Cache-Miss"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"cc": "max-age=0"},
        {"cc": "no-store, max-age=600"},
        {"cc": "private, max-age=600"},
        {"cc": "no-cache, max-age=600"},
        {},  # no Cache-Control (Cloudflare would apply its default edge TTL here)
        {"cc": "max-age=600", "cookie": "session=1"},
    ],
    ids=["max-age=0", "no-store", "private", "no-cache", "no-cache-control", "set-cookie"],
)
def test_cache_put_does_not_store_what_cloudflare_would_not(edge: Edge, params: dict[str, str]) -> None:
    key = "uncacheable-" + urlencode(params)
    assert call(edge.url, cache_path("put", key, **params)).body == b"put"
    assert is_miss(call(edge.url, cache_path("match", key)))


def test_cache_private_set_cookie_stores_the_response_without_its_cookie(edge: Edge) -> None:
    params = {"cc": "max-age=600, private=Set-Cookie", "cookie": "session=1"}
    assert call(edge.url, cache_path("put", "private-set-cookie", **params)).body == b"put"
    reply = call(edge.url, cache_path("match", "private-set-cookie"))
    assert reply.body == b"cached body"
    assert reply.headers.get_all("Set-Cookie") is None


def test_cache_put_throws_for_a_non_get_key(edge: Edge) -> None:
    reply = call(edge.url, cache_path("put", "posted", cc="max-age=600", method="POST", key_as="request"))
    assert reply.status == 400
    assert b"Cannot cache response to non-GET request" in reply.body


def test_cache_delete_and_named_caches_are_separate(edge: Edge) -> None:
    key = "deleted"
    call(edge.url, cache_path("put", key, cc="max-age=600", body="in default"))
    call(edge.url, cache_path("put", key, cc="max-age=600", body="in named", cache="named"))
    assert call(edge.url, cache_path("match", key)).body == b"in default"
    assert call(edge.url, cache_path("match", key, cache="named")).body == b"in named"
    assert call(edge.url, cache_path("delete", key, cache="named")).json() == {"deleted": True}
    assert call(edge.url, cache_path("delete", key, cache="named")).json() == {"deleted": False}
    assert is_miss(call(edge.url, cache_path("match", key, cache="named")))
    assert call(edge.url, cache_path("match", key)).body == b"in default"
    assert call(edge.url, cache_path("delete", key)).json() == {"deleted": True}
    assert is_miss(call(edge.url, cache_path("match", key)))


def test_cache_read_through_keyed_by_the_incoming_request(edge: Edge, upstream: Upstream) -> None:
    first = call(edge.url, "/cache/through?page=1")
    assert first.body == b"cacheable #1"
    assert first.headers["CF-Cache-Status"] is None
    # The put runs in waitUntil, so a request right after may still miss (and fetch again).
    misses = 1
    deadline = time.monotonic() + 5
    while (reply := call(edge.url, "/cache/through?page=1")).headers["CF-Cache-Status"] != "HIT":
        misses += 1
        assert time.monotonic() < deadline, edge.process.output()
        time.sleep(0.05)
    assert reply.body in {f"cacheable #{n}".encode() for n in range(1, misses + 1)}
    assert reply.headers["Cache-Control"] == "public, max-age=600"
    assert upstream.cacheable_hits == misses
    assert call(edge.url, "/cache/through?page=1").body == reply.body
    assert upstream.cacheable_hits == misses


def test_cache_entries_persist_across_restart(worker_dir: Path, upstream: Upstream, tmp_path: Path) -> None:
    with start_edge(worker_dir, upstream.url, tmp_path) as first:
        # Keys where one URL's path is a prefix of another's are both kept.
        assert call(first.url, cache_path("put", "a", cc="max-age=600", body="parent")).body == b"put"
        assert call(first.url, cache_path("put", "a/b", cc="max-age=600", body="child")).body == b"put"
    assert len(list((tmp_path / "cache" / "default").glob("*.meta.json"))) == 2
    with start_edge(worker_dir, upstream.url, tmp_path) as second:
        assert call(second.url, cache_path("match", "a")).body == b"parent"
        assert call(second.url, cache_path("match", "a/b")).body == b"child"


def test_kv_fail_rejects_the_chosen_operations_only(worker_dir: Path, upstream: Upstream, tmp_path: Path) -> None:
    with start_edge(worker_dir, upstream.url, tmp_path, "--kv-fail", "get") as edge:
        stored = call(edge.url, "/kv/try?key=k&value=v")
        failed = call(edge.url, "/kv/try?key=k")
    assert stored.status == 200 and stored.json() == {"stored": True}
    assert failed.status == 503
    assert failed.json()["error"] == 'Error: KV get("k") failed: injected by local-edge --kv-fail'
    with start_edge(worker_dir, upstream.url, tmp_path, "--kv-fail", "all") as edge:
        assert call(edge.url, "/kv/try?key=k&value=w").status == 503
    with start_edge(worker_dir, upstream.url, tmp_path) as edge:
        assert call(edge.url, "/kv/try?key=k").json() == {"value": "v"}  # the failed put stored nothing


def test_startup_failures_exit_1_with_a_message(worker_dir: Path, tmp_path: Path) -> None:
    def start(config: Path) -> subprocess.CompletedProcess[str]:
        cmd = ["node", str(SERVER), "--config", str(config), "--port", str(free_port()),
               "--site-packages", str(SITE_PACKAGES), "--persist-to", str(tmp_path / "state")]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    missing = start(tmp_path / "missing.toml")
    assert missing.returncode == 1
    assert "cannot read config" in missing.stderr

    broken_build = tmp_path / "broken-build"
    shutil.copytree(worker_dir, broken_build)
    config = broken_build / "wrangler.toml"
    config.write_text(config.read_text() + '\n[build]\ncommand = "exit 3"\n')
    failed = start(config)
    assert failed.returncode == 1
    assert "build command failed (exit 3)" in failed.stderr

    broken_import = tmp_path / "broken-import"
    shutil.copytree(worker_dir, broken_import)
    (broken_import / "src" / "entry.py").write_text("import no_such_module\n")
    crashed = start(broken_import / "wrangler.toml")
    assert crashed.returncode == 1
    assert "ModuleNotFoundError: No module named 'no_such_module'" in crashed.stderr

    bad_fault = subprocess.run(
        ["node", str(SERVER), "--config", str(worker_dir / "wrangler.toml"), "--kv-fail", "get,fetch"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad_fault.returncode == 1 and "--kv-fail: unknown KV operation fetch" in bad_fault.stderr


# ------------------------------------------------------------------ Analytics Engine


def write_points(edge: Edge, points: list[dict[str, object]], via: str = "to_js") -> dict[str, object]:
    """POST /events/write: the fixture Worker writes each point to env.FIXTURE_EVENTS."""
    body = json.dumps({"points": points, "via": via}).encode()
    reply = call(edge.url, "/events/write", method="POST", body=body)
    assert reply.status == 200, (reply.body, edge.process.output())
    return reply.json()


def analytics_lines(edge: Edge) -> list[str]:
    path = edge.persist / "analytics" / "fixture_events.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def points_with_index(edge: Edge, prefix: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [json.loads(line) for line in analytics_lines(edge)]
    return [p for p in points if p["indexes"] and str(p["indexes"][0]).startswith(prefix)]


@pytest.mark.parametrize("via", ["to_js", "dict"])
def test_analytics_data_point_is_appended_as_one_json_line(edge: Edge, via: str) -> None:
    point = {
        "indexes": [f"shape-{via}"],
        "blobs": ["exposure", None, {"hex": "68c3a9"}, "caf\u00e9"],  # {"hex"}: sent as bytes
        "doubles": [19.5, 1700000000, float("nan"), float("-inf")],
    }
    before = time.time() * 1000
    data = write_points(edge, [point], via=via)
    after = time.time() * 1000
    # Through the workers SDK env, as on Cloudflare: wrapped, and returns None at once.
    assert data == {"binding": "_BindingWrapper", "results": [{"returned": "None"}]}
    [line] = [line for line in analytics_lines(edge) if f'"shape-{via}"' in line]
    written = json.loads(line)
    assert list(written) == ["timestamp", "dataset", "indexes", "blobs", "doubles"]
    assert before - 1 <= written["timestamp"] <= after + 1
    assert written["dataset"] == "fixture_events"
    assert written["indexes"] == [f"shape-{via}"]
    assert written["blobs"] == ["exposure", None, "h\u00e9", "caf\u00e9"]
    assert written["doubles"][:2] == [19.5, 1700000000]
    assert math.isnan(written["doubles"][2]) and written["doubles"][3] == -math.inf


def test_analytics_data_point_at_the_limits_is_accepted(edge: Edge) -> None:
    blobs = ["\u00e9" * 400] * 19 + ["x" * 800]  # 20 blobs, 19 * 800 + 800 = 16000 bytes
    point = {"indexes": ["limits-" + "i" * 89], "blobs": blobs, "doubles": list(range(20))}
    assert write_points(edge, [point])["results"] == [{"returned": "None"}]
    [written] = points_with_index(edge, "limits-")
    assert len(str(written["indexes"][0]).encode()) == 96
    assert written["blobs"] == blobs
    assert written["doubles"] == list(range(20))


def test_concurrent_analytics_writes_give_whole_lines(edge: Edge) -> None:
    def request(n: int) -> dict[str, object]:
        points = [
            {"indexes": [f"conc-{n}-{i}"], "blobs": [f"{n}-{i}:" + "y" * 3000] * 5, "doubles": [n, i]}
            for i in range(5)
        ]
        return write_points(edge, points)

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(request, range(24)))
    assert all(r["results"] == [{"returned": "None"}] * 5 for r in replies)
    lines = analytics_lines(edge)
    points: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is whole JSON
    concurrent = [p for p in points if p["indexes"] and str(p["indexes"][0]).startswith("conc-")]
    assert len(concurrent) == 24 * 5
    for p in concurrent:
        n, i = (int(x) for x in str(p["indexes"][0]).split("-")[1:])
        assert p["blobs"] == [f"{n}-{i}:" + "y" * 3000] * 5
        assert p["doubles"] == [n, i]


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"indexes": ["a", "b"]}, "writeDataPoint(): Maximum of 1 indexes supported."),
        ({"doubles": [1, "12"]}, 'writeDataPoint(): doubles[1] must be a number, got string "12".'),
        ({"doubles": [None]}, "writeDataPoint(): doubles[0] must be a number, got undefined."),
        ({"indexes": ["i" * 97]}, "writeDataPoint(): Size of indexes[0] exceeds 96 bytes)."),
        ({"indexes": ["\u00e9" * 49]}, "writeDataPoint(): Size of indexes[0] exceeds 96 bytes)."),
        ({"blobs": ["b"] * 21}, "writeDataPoint(): Maximum of 20 blobs supported."),
        ({"doubles": [0] * 21}, "writeDataPoint(): Maximum of 20 doubles supported."),
        ({"blobs": ["b" * 8000, "c" * 8001]}, "writeDataPoint(): Cumulative size of blobs exceeds 16000 bytes)."),
        ({"blobs": [5]}, "writeDataPoint(): blobs[0] must be a string, an ArrayBuffer or null, got number 5."),
        (
            {"blobs": "abc"},
            "Incorrect type for the 'blobs' field on 'AnalyticsEngineEvent': the provided value is not of type 'Array'.",
        ),
    ],
    ids=["2-indexes", "string-double", "none-double", "long-index", "long-utf8-index", "21-blobs",
         "21-doubles", "blob-bytes", "number-blob", "blobs-not-array"],  # fmt: skip
)
def test_invalid_analytics_data_point_raises_in_python_and_writes_nothing(
    edge: Edge, point: dict[str, object], message: str
) -> None:
    before = analytics_lines(edge)
    data = write_points(edge, [point])
    # A JS TypeError, which Python sees as a pyodide JsException.
    assert data["results"] == [{"error": f"TypeError: {message}"}]
    assert analytics_lines(edge) == before
