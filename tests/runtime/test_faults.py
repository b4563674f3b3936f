"""Faults around the Worker, through the local runtime: KV that throws or is slow, corrupt published
rules, and an origin that errors, hangs, cuts the connection or sends awkward bodies.

Every case: the shopper gets the origin's page (byte-identical where nudge cannot act) and no
exception escapes the Worker: the runtime's output for the request is checked for tracebacks.
KV faults come from the Worker's local-only vars (NUDGE_LOCAL_KV_FAIL, NUDGE_LOCAL_KV_DELAY_MS);
origin faults from the test origin's /fault/ routes (tools/nudge_tools/origin.py). Requests go to the
Worker's own workerd port.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import msgpack
import pytest

from nudge.keys import key16
from nudge.visitor.profile import Profile, decode_profile, encode_profile
from nudge.visitor.session import Session
from nudge_tools.origin_pages import GZIP_PAGE, OWN_COOKIES, PAGE, PAGES, UNKNOWN_ENCODED, big_page, unbrotli
from nudge_tools.processes import REPO_ROOT, edge_environment
from nudge_tools.traffic import publish
from tests.runtime.test_worker import CODEC, Edge, edge_in_front_of_origin, nudge_cookies, wait_for_rules

pytestmark = pytest.mark.runtime

ORIGIN_TIMEOUT = 2  # seconds, for the shared edge (NUDGE_ORIGIN_TIMEOUT_SECONDS)
# What workerd (and wrangler, which prints the inspector's exceptions) says when an exception escapes
# the Worker ("Uncaught (in promise) ...", "Uncaught Error: ..."), and Python's own marks.
ESCAPED = ("Traceback", "Uncaught", "PythonError", "unhandled rejection", "waitUntil promise rejected")
CUT_BODY = "Network connection lost"  # workerd's note that a body (the origin's) broke off
IDENTITY = {"accept-encoding": "identity"}  # the bytes as the Worker sent them: workerd compresses for gzip


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv"),
                                  "--var", f"NUDGE_ORIGIN_TIMEOUT_SECONDS:{ORIGIN_TIMEOUT}") as e:
        yield e


class Watch:
    """The runtime's output from now on, to check what one test's requests logged."""

    QUIET = 0.5  # seconds without a new line of output: the runtime has said what it had to say

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.start = len(edge.process.output())

    def output(self, *requests: str, seconds: float = 15) -> str:
        """Output since the mark, once the runtime has gone quiet after these (finished) requests.
        The Worker's own port logs no access line per request (wrangler's proxy does, but it
        rewrites bodies), and workerd's stdout and the inspector's exceptions come in on different
        channels, so there is no last line to wait for: the output must stop growing."""
        deadline = time.monotonic() + seconds
        seen, since = len(self.edge.process.output()), time.monotonic()
        while True:
            out = self.edge.process.output()
            if len(out) != seen:
                seen, since = len(out), time.monotonic()
            elif time.monotonic() - since >= self.QUIET or time.monotonic() > deadline:
                return out[self.start:]
            time.sleep(0.02)

    def assert_clean(self, *requests: str, allowed: tuple[str, ...] = ()) -> str:
        """No exception escaped the Worker while serving these requests (and nothing was logged
        with a traceback, not even a caught one)."""
        out = self.output(*requests)
        kept = "\n".join(line for line in out.splitlines() if not any(a in line for a in allowed))
        for word in ESCAPED:
            assert word not in kept, out
        return out


def injected(body: bytes) -> int:
    """How many times nudge's page config is in a body."""
    return body.count(b'id="nudge-config"')


def without_injection(body: bytes) -> bytes:
    """The body with nudge's style, config and client script taken out."""
    body = re.sub(rb'<style id="nudge-style">.*?</style>', b"", body, flags=re.S)
    body = re.sub(rb'<script type="application/json" id="nudge-config">.*?</script>', b"", body, flags=re.S)
    return re.sub(rb'<script src="/_nudge/client\.js\?v=[0-9a-f]+" defer></script>', b"", body)


KV_NAMESPACE = "00000000000000000000000000000000"  # NUDGE_KV's id in wrangler.toml


def kv_put(kv_dir: Path, values: dict[str, bytes]) -> None:
    """Writes keys into the runtime's local KV (Miniflare's, in the --persist-to folder), in order,
    with `wrangler kv bulk put --local` (as `nudge rules publish` writes there)."""
    entries = [{"key": key, "value": base64.b64encode(value).decode(), "base64": True} for key, value in values.items()]
    listing = kv_dir.parent / f"{kv_dir.name}-bulk.json"
    listing.write_text(json.dumps(entries))
    command = [str(REPO_ROOT / "node_modules" / ".bin" / "wrangler"), "kv", "bulk", "put", "--local",
               "--persist-to", str(kv_dir.resolve()), "--binding", "NUDGE_KV", str(listing)]
    for _ in range(5):  # the running edge's workerd may hold the store's SQLite: a 500 until it lets go
        done = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, **edge_environment()},
                              capture_output=True, text=True)
        if done.returncode == 0 or "500 Internal Server Error" not in done.stdout + done.stderr:
            break
    assert done.returncode == 0, f"wrangler kv bulk put failed:\n{done.stdout}{done.stderr}"


def _kv_rows(kv_dir: Path, prefix: str) -> list[tuple[str, str]]:
    """(key, blob id) of the live keys starting with `prefix` in Miniflare's KV store under `kv_dir`."""
    stores = [p for p in (kv_dir / "v3" / "kv" / "miniflare-KVNamespaceObject").glob("*.sqlite")
              if p.name != "metadata.sqlite"]
    rows: list[tuple[str, str]] = []
    for store in stores:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            rows += db.execute("SELECT key, blob_id FROM _mf_entries WHERE substr(key, 1, ?) = ? AND "
                               "(expiration IS NULL OR expiration > ?)",
                               (len(prefix), prefix, time.time() * 1000)).fetchall()
    return rows


def kv_value(kv_dir: Path, key: str) -> bytes | None:
    """The value stored under `key` in the runtime's local KV, None when there is none."""
    return kv_values(kv_dir, key).get(key)


def kv_values(kv_dir: Path, prefix: str) -> dict[str, bytes]:
    """Every key starting with `prefix` and its value."""
    return {key: (kv_dir / "v3" / "kv" / KV_NAMESPACE / "blobs" / blob).read_bytes()
            for key, blob in _kv_rows(kv_dir, prefix)}


# -- KV that throws or is slow ----------------------------------------------------------------------


def sneaker_browser(now: int, visitor: bytes | None = None) -> str:
    """A session cookie for this visit: 400 s on sneaker pages, three pairs seen, nothing in the cart,
    which is what the sneakers exit-intent rule waits for."""
    session = Session.fresh(now - 900, visitor)
    session.last_seen, session.pages = now - 10, 6
    stats = session.category("sneakers", now - 10)
    stats.views, stats.dwell, stats.products = 6, 400, [key16("aero-runner"), key16("trail-blazer"), key16("city-knit")]
    return f"nudge={CODEC.encode(session)}"


def returning_visitor(now: int) -> tuple[bytes, str]:
    """(visitor id, cookie) of a visit that ended an hour ago: the next page starts a new visit,
    whose first page merges into the stored profile."""
    session = Session.fresh(now - 4000)
    session.last_seen, session.pages = now - 3600, 3
    session.category("sneakers", now - 3600).views = 3
    return session.visitor, f"nudge={CODEC.encode(session)}"


STORED = Profile(visits=4, orders=2, revenue=25_900, first_seen=1_700_000_000, last_seen=1_760_000_000,
                 affinity={"sneakers": 12.0})


def config_of(body: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(body.split('id="nudge-config">')[1].split("</script>")[0])
    return data


def assert_personalized_from_the_cookie(edge: Edge, watch: Watch, limit: float) -> None:
    now = int(time.time())
    with edge.client() as c:
        c.get("/warm-up")  # the isolate's first request starts the rules refresh; pages never wait for it
        started = time.perf_counter()
        r = c.get("/collections/sneakers", headers={"cookie": sneaker_browser(now)})
        elapsed = time.perf_counter() - started
    assert r.status_code == 200 and "<h1>Hello</h1>" not in r.text  # the shop page, personalized:
    assert [n["rule"] for n in config_of(r.text)["nudges"]] == ["sneakers-exit-intent"]  # type: ignore[index]
    assert 'data-nudge-price="129.00"' in r.text and len(nudge_cookies(r)) == 1
    assert elapsed < limit, f"the page took {elapsed:.3f} s"
    out = watch.assert_clean("GET /collections/sneakers")
    assert "profile read skipped" in out


@pytest.fixture(scope="module")
def failing_kv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv"), "--var", "NUDGE_LOCAL_KV_FAIL:all",
                                  "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e:
        yield e


@pytest.fixture(scope="module")
def slow_kv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv"), "--var", "NUDGE_LOCAL_KV_DELAY_MS:2000") as e:
        yield e


def test_kv_that_throws_decides_from_the_cookie(failing_kv: Edge) -> None:
    watch = Watch(failing_kv)
    assert_personalized_from_the_cookie(failing_kv, watch, limit=1.0)
    with failing_kv.client() as c:
        assert c.get("/login?user=customer-1").status_code == 200  # the identity lookup throws too
        assert c.get("/_nudge/health").json()["rules_version"].startswith("bundled:")
        assert c.post("/_nudge/beacon", json={"pv": 1, "dwell": 5}).status_code == 204
    watch.assert_clean("GET /login?user=customer-1", "GET /_nudge/health", "POST /_nudge/beacon")
    assert 'published rules unusable (Error: KV get("rules:current") failed' in failing_kv.process.output()


def test_forget_with_kv_down_says_so_and_keeps_the_cookies(failing_kv: Edge) -> None:
    watch = Watch(failing_kv)
    with failing_kv.client() as c:
        c.get("/page")
        r = c.post("/_nudge/forget")
    watch.assert_clean("POST /_nudge/forget")
    assert r.status_code == 503 and "try again" in r.json()["error"] and r.headers["retry-after"] == "60"
    assert "set-cookie" not in r.headers  # the visitor id is what a retry needs to find the profile


def test_kv_that_throws_never_replaces_the_stored_profile(tmp_path: Path) -> None:
    visitor, cookie = returning_visitor(int(time.time()))
    key = f"profile:{visitor.hex()}"
    kv_put(tmp_path, {key: encode_profile(STORED)})
    stored = kv_value(tmp_path, key)
    # writes still work
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_LOCAL_KV_FAIL:get,getWithMetadata") as e:
        watch = Watch(e)
        with e.client() as c:
            r = c.get("/", headers={"cookie": cookie})
        assert r.status_code == 200 and injected(r.content) == 1
        deadline = time.monotonic() + 10  # until the Worker has given up on the profile, or wrote one
        while time.monotonic() < deadline and kv_value(tmp_path, key) == stored \
                and "profile not written" not in e.process.output():
            time.sleep(0.05)
        watch.assert_clean("GET /")
    assert decode_profile(kv_value(tmp_path, key)) == STORED


def test_kv_that_takes_2_s_does_not_hold_the_page(slow_kv: Edge) -> None:
    assert_personalized_from_the_cookie(slow_kv, Watch(slow_kv), limit=1.0)


def test_kv_that_takes_2_s_still_counts_the_visit_into_the_stored_profile(slow_kv: Edge) -> None:
    visitor, cookie = returning_visitor(int(time.time()))
    key = f"profile:{visitor.hex()}"
    kv_put(slow_kv.kv_dir, {key: encode_profile(STORED)})
    stored = kv_value(slow_kv.kv_dir, key)
    watch = Watch(slow_kv)
    with slow_kv.client() as c:
        started = time.perf_counter()
        r = c.get("/", headers={"cookie": cookie})
        elapsed = time.perf_counter() - started
    assert r.status_code == 200 and injected(r.content) == 1 and elapsed < 1.0
    deadline = time.monotonic() + 15  # read (2 s) and write (2 s) in the background
    while time.monotonic() < deadline and kv_value(slow_kv.kv_dir, key) == stored:
        time.sleep(0.05)
    watch.assert_clean("GET /")
    profile = decode_profile(kv_value(slow_kv.kv_dir, key))
    assert profile is not None and profile.visits == STORED.visits + 1  # counted, into what was stored
    assert (profile.orders, profile.revenue, profile.first_seen) == (STORED.orders, STORED.revenue, STORED.first_seen)
    assert "sneakers" in profile.affinity


def test_kv_that_takes_2_s_does_not_hold_a_logged_in_page_and_links_it_later(slow_kv: Edge) -> None:
    watch = Watch(slow_kv)
    with slow_kv.client() as c:
        started = time.perf_counter()
        r = c.get("/login?user=slow-kv-customer")  # the origin names its customer: an identity lookup
        elapsed = time.perf_counter() - started
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
    assert r.status_code == 200 and injected(r.content) == 1 and elapsed < 1.0
    key = f"profile:{visitor}"
    deadline = time.monotonic() + 20  # lookup, link, profile write: 2 s each, after the response
    while time.monotonic() < deadline and not (decode_profile(kv_value(slow_kv.kv_dir, key)) or Profile()).identity:
        time.sleep(0.05)
    watch.assert_clean("GET /login?user=slow-kv-customer")
    profile = decode_profile(kv_value(slow_kv.kv_dir, key))
    assert profile is not None and profile.identity and profile.visits == 1
    links = kv_values(slow_kv.kv_dir, "identity:")
    assert [v.decode() for v in links.values()] == [visitor]


def test_a_device_that_adopts_a_customer_profile_merges_into_it(edge: Edge) -> None:
    watch = Watch(edge)
    with edge.client() as laptop:
        laptop.get("/login?user=customer-77")  # the laptop's first visit owns the link and the profile
        owner = CODEC.decode(laptop.cookies["nudge"]).visitor_id
    key = f"profile:{owner}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (decode_profile(kv_value(edge.kv_dir, key)) or Profile()).identity:
        time.sleep(0.05)
    first = decode_profile(kv_value(edge.kv_dir, key))
    assert first is not None and first.identity and first.visits == 1
    for _ in range(3):  # a phone's first page adopts the laptop's visitor id (if KV answers in time)
        with edge.client() as phone:
            phone.get("/login?user=customer-77")
            if CODEC.decode(phone.cookies["nudge"]).visitor_id == owner:
                break
    else:
        pytest.fail("no phone adopted the customer's visitor id")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and decode_profile(kv_value(edge.kv_dir, key)) == first:
        time.sleep(0.05)
    watch.assert_clean("GET /login?user=customer-77")
    merged = decode_profile(kv_value(edge.kv_dir, key))
    assert merged is not None and merged.visits == 2 and merged.identity == first.identity


# -- corrupt published rules -----------------------------------------------------------------------


def test_corrupt_rules_in_kv_fall_back_to_the_bundled_set(tmp_path: Path) -> None:
    files = {"pages.toml": '[[page]]\ntype = "home"\npattern = "/"\n'}
    corrupt = {
        "not msgpack": {"rules:current": b"aaaa", "rules:aaaa": b"\xc1 not a rule set"},
        "the pointer names nothing": {"rules:current": b"bbbb"},
        "a pointer that is not text": {"rules:current": b"\xff\xfe"},
        "msgpack of another shape": {"rules:current": b"cccc", "rules:cccc": msgpack.packb({"rules": 1})},
        "files that do not match the version": {"rules:current": b"dddd",
                                                "rules:dddd": msgpack.packb([1, "dddd", 0, files])},
        "invalid rules": {"rules:current": b"eeee", "rules:eeee": msgpack.packb(
            [1, "eeee", 0, {**files, "x.toml": 'id = "x"\ntrigger = "sometimes"'}])},
    }
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e, e.client() as c:
        watch = Watch(e)
        for n, (case, values) in enumerate(corrupt.items(), start=1):
            kv_put(tmp_path, values)
            deadline = time.monotonic() + 15
            while e.process.output()[watch.start:].count("published rules unusable") < n:
                assert time.monotonic() < deadline, f"{case}: never noticed\n{e.process.output()}"
                c.get("/_nudge/health")  # a request lets the isolate look again (at most every second)
                time.sleep(0.2)
            page = c.get("/page")
            assert page.status_code == 200 and injected(page.content) == 1, case
            assert c.get("/_nudge/health").json()["rules_version"].startswith("bundled:"), case
        watch.assert_clean("GET /page")


# -- the origin fails --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_origin_errors_pass_through_unchanged(edge: Edge, status: int) -> None:
    watch = Watch(edge)
    with edge.client() as c:
        r = c.get(f"/fault/status/{status}")
    assert r.status_code == status and r.content == f"<h1>origin says {status}</h1>\n".encode()
    assert r.headers["x-origin"] == "yes" and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "set-cookie" not in r.headers
    watch.assert_clean(f"GET /fault/status/{status}")


def test_origin_that_never_answers_gets_a_504_from_the_edge(edge: Edge) -> None:
    watch = Watch(edge)
    started = time.perf_counter()
    with edge.client() as c:
        r = c.get("/fault/hang?seconds=6")
    elapsed = time.perf_counter() - started
    assert r.status_code == 504 and r.text == "Gateway Timeout: the shop did not answer in time\n"
    assert r.headers["cache-control"] == "no-store" and "set-cookie" not in r.headers
    assert ORIGIN_TIMEOUT <= elapsed < ORIGIN_TIMEOUT + 1.5
    out = watch.assert_clean("GET /fault/hang?seconds=6")
    assert f"origin did not answer within {ORIGIN_TIMEOUT} s" in out


def test_slow_origin_within_the_timeout_is_served(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get(f"/fault/hang?seconds={ORIGIN_TIMEOUT - 1}")
    assert r.status_code == 200 and injected(r.content) == 1


def cut_response(edge: Edge, path: str, encoding: str = "identity") -> bytes:
    """What the shopper received of a response that must break off (decoded), asserting it does:
    a broken transfer (no last chunk, or fewer bytes than Content-Length), never a complete one."""
    received, sent_as = b"", ""
    with httpx.Client(base_url=edge.url, timeout=10) as c, pytest.raises(httpx.RemoteProtocolError):
        with c.stream("GET", path, headers={"accept-encoding": encoding}) as r:
            sent_as = r.headers.get("content-encoding", "identity")
            assert r.status_code == 200 and sent_as in {"identity", encoding}
            for chunk in r.iter_raw():
                received += chunk
    if sent_as == "gzip":  # as much of it as decodes (the gzip stream breaks off too)
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(received)
    return received


CUTS = ["/fault/cut", "/fault/cut-chunked", "/fault/cut?type=application/octet-stream",
        "/fault/cut-chunked?type=application/octet-stream"]


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("path", CUTS)
def test_origin_closing_mid_body_reaches_the_shopper_as_a_cut_response(edge: Edge, path: str, encoding: str) -> None:
    watch = Watch(edge)
    received = cut_response(edge, path, encoding)
    # what arrived is the start of what the origin sent (60 bytes); the response is not passed off
    # as complete: the browser and any cache see a broken transfer, as they would from the origin
    assert PAGE.encode()[:60].startswith(without_injection(received))
    watch.assert_clean(f"GET {path}", allowed=(CUT_BODY,))


@pytest.mark.parametrize("path", ["/fault/cut?at=100&pause=0.5", "/fault/cut-chunked?at=100&pause=0.5",
                                  "/fault/cut?at=100&pause=0.5&type=application/octet-stream"])
def test_what_the_origin_sent_before_it_broke_off_reaches_the_shopper(edge: Edge, path: str) -> None:
    received = without_injection(cut_response(edge, path))  # the origin hangs up 0.5 s after 100 bytes
    assert PAGE.encode()[:100].startswith(received) and b"<h1>Hello</h1><p>origin page</p>" in received
    assert b"</html>" not in received and not received.endswith(b"defer></script>")  # nothing closes it


def test_big_page_cut_mid_body_breaks_off_after_what_was_sent(edge: Edge) -> None:
    received = without_injection(cut_response(edge, "/fault/big?mb=4&cut=1&pause=0.5"))
    assert big_page(4).startswith(received) and len(received) > 512 * 1024  # streamed, not held back


@pytest.mark.parametrize("path", ["/fault/cut?cache=public,max-age=600&at=100",
                                  "/fault/cut-chunked?cache=public,max-age=600&at=100"])
def test_page_the_origin_broke_off_is_never_kept_in_the_edge_cache(edge: Edge, path: str) -> None:
    """A shareable page (Cache-Control: public) that broke off: a later visitor must not be served
    the part that arrived from the edge cache as if it were the whole page."""
    watch = Watch(edge)
    for _ in range(3):
        asked = len(edge.seen)
        received = without_injection(cut_response(edge, path))
        assert PAGE.encode()[:100].startswith(received)
        assert len(edge.seen) == asked + 1  # each time from the origin: nothing was kept
    watch.assert_clean(f"GET {path}", allowed=(CUT_BODY,))


@pytest.mark.parametrize("path", [f"/fault/cut?cache=public,max-age=600&at={len(PAGE.encode())}",  # all of it
                                  "/fault/gzip?cache=public,max-age=600"])
def test_whole_shareable_page_is_kept_in_the_edge_cache(edge: Edge, path: str) -> None:
    """The control for the test above: a shareable page that arrived whole is kept, and served
    whole (personalized on top) without asking the origin again."""
    deadline = time.monotonic() + 10  # the cache write runs after the response
    with edge.client() as c:
        while True:
            asked = len(edge.seen)
            r = c.get(path, headers=IDENTITY)
            assert r.status_code == 200 and injected(r.content) == 1 and without_injection(r.content) == PAGE.encode()
            if len(edge.seen) == asked:
                break  # served from the edge cache
            assert time.monotonic() < deadline, f"never served from the edge cache\n{edge.process.output()}"
            time.sleep(0.1)


# -- bodies ----------------------------------------------------------------------------------------


def test_gzip_page_is_rewritten_and_sent_gzip_once(edge: Edge) -> None:
    watch = Watch(edge)
    with edge.client() as c, c.stream("GET", "/fault/gzip", headers={"accept-encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip" and "content-length" not in r.headers
    body = gzip.decompress(raw)  # one layer of gzip: no double encoding, no plain body under the header
    assert injected(body) == 1 and without_injection(body) == PAGE.encode()
    watch.assert_clean("GET /fault/gzip")


def test_brotli_page_is_rewritten_and_sent_brotli_once(edge: Edge) -> None:
    watch = Watch(edge)
    with edge.client() as c, c.stream("GET", "/fault/br", headers={"accept-encoding": "br"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "br" and "content-length" not in r.headers
    body = unbrotli(raw)
    assert injected(body) == 1 and without_injection(body) == PAGE.encode()
    watch.assert_clean("GET /fault/br")


def test_compressed_response_nudge_does_not_rewrite_arrives_decoded_once(edge: Edge) -> None:
    with edge.client() as c, c.stream("GET", "/fault/gzip?type=application/json",
                                      headers={"accept-encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == gzip.decompress(GZIP_PAGE)
    assert "content-length" not in r.headers or int(r.headers["content-length"]) == len(raw)
    assert not nudge_cookies(r)


def test_body_in_an_encoding_the_runtime_cannot_decode_passes_byte_identical(edge: Edge) -> None:
    watch = Watch(edge)
    with edge.client() as c:
        r = c.get("/fault/unknown-encoding")
    assert r.content == UNKNOWN_ENCODED and r.headers["content-encoding"] == "x-custom"
    assert not nudge_cookies(r) and r.headers.get("cache-control") is None
    watch.assert_clean("GET /fault/unknown-encoding")


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def workerd_pid(edge: Edge) -> int:
    """The workerd process serving the Worker: the one listening on the Worker's own port (wrangler
    runs a second workerd for its proxy)."""
    port = f"{httpx.URL(edge.url).port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port}") and fields[3] == "0A":  # local address, LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no process listens on {edge.url}")


def test_10_mb_page_streams_through_and_is_injected(edge: Edge) -> None:
    expected = big_page(10)
    watch = Watch(edge)
    workerd = workerd_pid(edge)
    with edge.client() as c:
        c.get("/fault/big?mb=1")  # warm up whatever a big page allocates once
        before = rss_kib(workerd)
        for _ in range(2):
            started = time.perf_counter()
            with c.stream("GET", "/fault/big?mb=10&pause=1.5", headers=IDENTITY) as r:
                chunks = r.iter_raw()
                first = next(chunks)
                first_at = time.perf_counter() - started
                body = first + b"".join(chunks)
            assert first_at < 1.2, f"first bytes after {first_at:.2f} s: the page was buffered"
        after = rss_kib(workerd)
    assert injected(body) == 1 and body.endswith(b"</script></body></html>")
    assert without_injection(body) == expected  # every origin byte, in order
    assert after - before < 64 * 1024, f"runtime grew {(after - before) // 1024} MiB over two 10 MB pages"
    watch.assert_clean("GET /fault/big?mb=10&pause=1.5")


# -- awkward HTML ----------------------------------------------------------------------------------


def page(edge: Edge, name: str) -> httpx.Response:
    watch = Watch(edge)
    with edge.client() as c:
        r = c.get(f"/fault/page/{name}")
    assert r.status_code == 200
    watch.assert_clean(f"GET /fault/page/{name}")
    return r


def test_fragment_without_html_head_or_body_is_left_byte_identical(edge: Edge) -> None:
    assert page(edge, "fragment").content == PAGES["fragment"][0]


def test_page_without_head_gets_style_and_config_in_its_body(edge: Edge) -> None:
    body = page(edge, "no-head").content
    assert injected(body) == 1 and body.endswith(b"defer></script></body></html>")
    assert body.index(b'<style id="nudge-style">') < body.index(b"<h1>")  # the style opens the body
    assert without_injection(body) == PAGES["no-head"][0]


def test_page_without_body_gets_nothing_in_a_body_it_does_not_have(edge: Edge) -> None:
    body = page(edge, "no-body").content
    assert injected(body) == 0 and without_injection(body) == PAGES["no-body"][0]


@pytest.mark.parametrize(("name", "ending"), [
    ("unclosed", b"defer></script>"),  # nothing closes: the end of the document
    ("no-end-tags", b"defer></script>"),
    ("no-body-end", b"defer></script></html>"),  # </html> closes the body
    ("no-head-end", b"defer></script></body></html>"),  # the style goes at the start of the body
])
def test_pages_leaving_out_optional_end_tags_get_everything_once(edge: Edge, name: str, ending: bytes) -> None:
    body = page(edge, name).content  # </head>, </body> and </html> are optional in HTML
    assert injected(body) == 1 and body.endswith(ending)
    assert body.count(b'<style id="nudge-style">') == 1
    assert body.index(b'<style id="nudge-style">') < body.index(b"<p>")  # before anything it styles
    assert without_injection(body) == PAGES[name][0]


def test_end_of_body_inside_scripts_comments_and_text_is_not_the_end(edge: Edge) -> None:
    body = page(edge, "body-in-script-and-comment").content
    assert injected(body) == 1
    assert body.index(b"<p>last paragraph</p>") < body.index(b'id="nudge-config"')  # the real </body>
    assert body.endswith(b"defer></script></body></html>")
    assert without_injection(body) == PAGES["body-in-script-and-comment"][0]


@pytest.mark.parametrize("name", ["windows-1252", "shift_jis"])
def test_page_in_another_charset_keeps_its_bytes(edge: Edge, name: str) -> None:
    r = page(edge, name)
    assert r.headers["content-type"] == PAGES[name][1]
    assert injected(r.content) == 1 and without_injection(r.content) == PAGES[name][0]


@pytest.mark.parametrize("name", ["utf-16", "iso-2022-jp"])
def test_page_in_a_charset_nudge_cannot_write_into_passes_byte_identical(edge: Edge, name: str) -> None:
    r = page(edge, name)
    assert r.content == PAGES[name][0] and not nudge_cookies(r) and r.headers.get("cache-control") is None


NON_ASCII_BANNER = """
id = "charset-banner"
trigger = "page_load"
pages = ["other"]
[action]
kind = "banner"
title = "Café crème"
body = "10 € off — today"
"""


def test_nudge_text_reads_right_in_the_pages_own_charset(tmp_path: Path) -> None:
    kv_dir, rules_dir = tmp_path / "kv", tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    (rules_dir / "charset-banner.toml").write_text(NON_ASCII_BANNER)
    version = publish(rules_dir, kv_dir)
    with edge_in_front_of_origin(kv_dir, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e, e.client() as c:
        wait_for_rules(e, c, version)
        for name, charset in (("windows-1252", "cp1252"), ("shift_jis", "shift_jis"), ("/page", "utf-8")):
            with e.client() as visitor:  # a new visitor each time: the banner shows once a visit
                r = visitor.get(name if name.startswith("/") else f"/fault/page/{name}")
            text = html.unescape(r.content.decode(charset))  # as the browser reads it
            assert "Café crème" in text and "10 € off — today" in text, name
            assert 'data-nudge-rule="charset-banner"' in text


# -- headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?type=application/json", "?status=302", "?user=customer-5"])
def test_origin_set_cookies_are_all_kept(edge: Edge, query: str) -> None:
    watch = Watch(edge)
    with edge.client() as c:
        r = c.get(f"/fault/cookies{query}")
    own = [v for v in r.headers.get_list("set-cookie") if not v.startswith("nudge")]
    assert own == list(OWN_COOKIES)  # each on its own line, the Expires comma intact
    assert len(nudge_cookies(r)) == (1 if query in ("", "?user=customer-5") else 0)
    watch.assert_clean(f"GET /fault/cookies{query}")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(("location", "expected"), [
    ("/cart?step=2", "/cart?step=2"),  # relative: as it is
    ("https://pay.example/checkout", "https://pay.example/checkout"),  # another host: as it is
    ("ORIGIN/account?x=1", "/account?x=1"),  # the origin's own address: onto the edge's host
])
def test_redirects_pass_through_unfollowed(edge: Edge, status: int, location: str, expected: str) -> None:
    watch = Watch(edge)
    asked = len(edge.seen)
    path = f"/fault/redirect?status={status}&to={location}"
    with edge.client() as c:
        r = c.get(path)
    assert r.status_code == status and r.headers["location"] == expected and r.content == b""
    assert len(edge.seen) == asked + 1  # the edge did not follow it
    assert not nudge_cookies(r)
    watch.assert_clean(f"GET {path}")


@pytest.mark.parametrize("path", ["//evil.example/x", "/\\evil.example/x"])
def test_origin_path_that_looks_like_a_host_stays_on_the_edge(edge: Edge, path: str) -> None:
    watch = Watch(edge)
    with edge.client() as c:
        r = c.get("/fault/redirect", params={"to": f"ORIGIN{path}"})
    location = r.headers["location"]
    assert not location.startswith(("//", "/\\"))  # browsers read both as "another host follows"
    target = httpx.URL(edge.url).join(location)
    assert target.host == "127.0.0.1" and target.port == httpx.URL(edge.url).port, location
    assert r.headers["location"].endswith(f"{path}")
    watch.assert_clean(f"GET {r.request.url.raw_path.decode()}")


def test_origin_redirect_to_its_own_root_with_a_query_becomes_a_path(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/fault/redirect?to=ORIGIN?step=2")
    assert r.headers["location"] == "/?step=2"
