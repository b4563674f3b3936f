"""src/entry.py on workerd (Cloudflare's runtime, through `wrangler dev`), in front of a scriptable origin."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nudge.signing import Signer
from nudge.visitor.identity import shop_token
from nudge.visitor.profile import Profile, decode_profile
from nudge.visitor.session import SessionCodec
from nudge_tools.origin import serving_origin
from nudge_tools.origin_pages import ASSET, PAGE
from nudge_tools.processes import REPO_ROOT, Process, checkout_python_path, edge_environment, local_edge
from nudge_tools.traffic import publish

pytestmark = pytest.mark.runtime
SECRET = "runtime-test-secret"
SHOP_SECRET = "runtime-shop-secret"  # NUDGE_SHOP_SECRET: signs the shop's identity tokens
CODEC = SessionCodec(Signer([SECRET.encode()], "session"))


@dataclass
class Edge:
    url: str
    origin: str
    seen: list[dict[str, str]]  # request headers the origin received
    process: Process
    kv_dir: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@contextmanager
def edge_in_front_of_origin(kv_dir: Path, *flags: str, config: Path | None = None) -> Iterator[Edge]:
    """nudge on workerd in front of the scriptable test origin (tools/nudge_tools/origin.py);
    `config`: another wrangler.toml (local_edge)."""
    with serving_origin() as (origin_url, seen), \
            local_edge(origin_url, kv_dir, SECRET, *flags, config=config) as (url, process):
        yield Edge(url, origin_url, seen, process, kv_dir)


PROFILE_TTL_DAYS = 2  # the shared edge's NUDGE_PROFILE_TTL_DAYS (wrangler.toml: 400), which no other test reads


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv"), "--var", f"NUDGE_SHOP_SECRET:{SHOP_SECRET}",
                                 "--var", f"NUDGE_PROFILE_TTL_DAYS:{PROFILE_TTL_DAYS}") as e:
        yield e


def nudge_cookies(resp: httpx.Response) -> list[str]:
    return [c for c in resp.headers.get_list("set-cookie") if c.startswith("nudge")]


def test_html_is_rewritten_streamed_and_cookied(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/page")
    assert r.status_code == 200
    assert '<script type="application/json" id="nudge-config">' in r.text
    assert r.text.index('id="nudge-style"') < r.text.index("</head>")
    assert r.text.rstrip().endswith("</script></body></html>")
    assert "<h1>Hello</h1><p>origin page</p>" in r.text
    (cookie,) = nudge_cookies(r)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain-http localhost
    assert r.headers["cache-control"] == "private, no-store"


def test_origin_cookies_survive_next_to_ours(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/cookies")
    cookies = r.headers.get_list("set-cookie")
    assert "a=1; Path=/" in cookies and "b=2; Path=/; HttpOnly" in cookies
    assert len(nudge_cookies(r)) == 1


def test_non_html_passes_byte_identical_without_cookies(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/asset.bin")
    assert r.content == ASSET and r.headers["etag"] == '"abc"'
    assert "set-cookie" not in r.headers


def test_origin_errors_pass_through_as_they_are(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/error")
    assert r.status_code == 500 and r.text == "<h1>origin broke</h1>" and r.headers["x-origin"] == "yes"
    assert "set-cookie" not in r.headers


def test_gzip_origin_body_is_rewritten(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/gzip", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and 'id="nudge-config"' in r.text and "<h1>Hello</h1>" in r.text


def test_redirects_to_the_origin_host_are_made_relative(edge: Edge) -> None:
    host = edge.origin.removeprefix("http://")
    with edge.client() as c:
        r = c.get("/redirect", headers={"host": host})  # the origin redirects to its own address
    assert r.status_code == 302 and r.headers["location"] == "/page?from=redirect"


def test_origin_never_sees_our_cookies_or_forged_offer_headers(edge: Edge) -> None:
    with edge.client() as c:
        first = c.get("/page")
        jar = "; ".join(cookie.split(";")[0] for cookie in nudge_cookies(first))
        r = c.get("/headers", headers={"cookie": f"shop=1; {jar}", "x-nudge-offer": "code=FREE; percent=90"})
    seen = r.json()
    assert seen["cookie"] == "shop=1"
    assert "x-nudge-offer" not in seen


def test_page_without_head_or_body_is_left_alone(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/bare")
    assert r.text == "<p>no head, no body</p>"


def test_body_streams_before_the_origin_finishes(edge: Edge) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        start = time.perf_counter()
        # workerd compresses for clients that accept gzip (as Cloudflare does): ask for the bytes as they are
        with c.stream("GET", "/slow-stream?pause=1.5", headers={"accept-encoding": "identity"}) as r:
            chunks = r.iter_raw()
            first = next(chunks)
            first_at = time.perf_counter() - start
            rest = b"".join(chunks)
            done_at = time.perf_counter() - start
    assert first and first_at < 1.0 < 1.4 < done_at  # first bytes left during the origin's pause
    assert b"nudge-config" in first + rest


def test_beacon_validates_input(edge: Edge) -> None:
    with edge.client() as c:
        page = c.get("/page")
        pv = json.loads(page.text.split('id="nudge-config">')[1].split("</script>")[0])["pv"]
        ok = c.post("/_nudge/beacon", json={"pv": pv, "dwell": 12})
        assert ok.status_code == 204 and len(nudge_cookies(ok)) == 1
        for body, status, reason in [
            (b"{", 400, "not JSON"),
            (b'{"events": [{"type": "steal"}]}', 400, "unknown event type"),
            (b'{"pv": 1, "dwell": -5}', 400, "dwell"),
            (b'{"pv": "x"}', 400, "page-view number"),
            (b"{" + b" " * 9000 + b"}", 413, "8192"),
        ]:
            # connection: close, as workerd closes it after a 413 with the body unread (on Cloudflare the
            # browser's connection ends at Cloudflare's front line, not at workerd)
            bad = c.post("/_nudge/beacon", content=body,
                         headers={"content-type": "application/json", "connection": "close"})
            assert bad.status_code == status and reason in bad.json()["error"]
            assert "set-cookie" not in bad.headers
        assert c.get("/_nudge/beacon").status_code == 405


def test_tampered_cookie_is_a_fresh_session_not_an_error(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/page", headers={"cookie": "nudge=AAAA.BBBB; nudge_offer=%%%; nudge_dw=zz"})
    assert r.status_code == 200 and 'id="nudge-config"' in r.text and len(nudge_cookies(r)) == 1


def test_client_script_and_health(edge: Edge) -> None:
    with edge.client() as c:
        page = c.get("/page").text
        src = page.split('<script src="')[1].split('"')[0]
        js = c.get(src)
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert "nudge-config" in js.text and "immutable" in js.headers["cache-control"]
        health = c.get("/_nudge/health")
        assert health.status_code == 200 and health.json()["rules"] >= 1
        assert c.get("/_nudge/nope").status_code == 404


def test_first_page_of_a_visit_writes_the_profile_in_the_background(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/page")
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
    assert wait_for_profile(edge.kv_dir, visitor, seconds=5) is not None, (kv_keys(edge.kv_dir),
                                                                           edge.process.output()[-2000:])


def test_profile_written_in_the_background_counts_the_visit(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/page")
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        c.get("/page")  # the same visit: no second write
        entry = wait_for_profile(edge.kv_dir, visitor)
        assert entry is not None, (visitor, kv_keys(edge.kv_dir), edge.process.output())
        profile = decode_profile(entry.value)
    assert profile is not None and profile.visits == 1 and profile.first_seen > 0


def profile_counting(edge: Edge, visitor: str, visits: int, seconds: float = 15) -> Profile | None:
    """The visitor's profile once it counts `visits` visits (written in the background), else as it is then."""
    deadline = time.monotonic() + seconds
    while True:
        entry = wait_for_profile(edge.kv_dir, visitor, seconds)
        profile = decode_profile(entry.value) if entry else None
        if profile is not None and profile.visits == visits or time.monotonic() > deadline:
            return profile
        time.sleep(0.05)


# A request that is not a page, in a tab left open for an hour: the new visit's first request.
BEGINS_A_VISIT = {
    "beacon": lambda c, pv, cookie: c.post("/_nudge/beacon", json={"pv": pv, "dwell": 5}, headers=cookie),
    "cart add": lambda c, pv, cookie: c.post("/cart/add", data={"sku": "SNK-1", "qty": "1"}, headers=cookie),
}


@pytest.mark.parametrize("request_kind", sorted(BEGINS_A_VISIT))
def test_a_visit_begun_without_a_page_is_counted_with_the_one_that_ended(edge: Edge, request_kind: str) -> None:
    """The shopper's first act after an hour is a beacon (a tab switch, a reveal) or a cart add, not
    a page. Its answer stores the new visit's session, so no page will be that visit's first: the
    request's own profile merge counts the visit, and the interest of the visit that ended."""
    with edge.client() as c:
        page = c.get("/collections/sneakers")
        pv = json.loads(page.text.split('id="nudge-config">')[1].split("</script>")[0])["pv"]
        session = CODEC.decode(c.cookies["nudge"])
    first = profile_counting(edge, session.visitor_id, 1)
    assert first is not None and first.visits == 1 and not first.affinity
    session.started, session.last_seen = session.started - 3600, session.last_seen - 3600
    for stats in session.categories.values():
        stats.last_seen -= 3600
    with edge.client() as c:
        began = BEGINS_A_VISIT[request_kind](c, pv, {"cookie": f"nudge={CODEC.encode(session)}"})
        assert began.status_code in (200, 204) and len(nudge_cookies(began)) == 1
        assert CODEC.decode(c.cookies["nudge"]).started > session.started  # a new visit, stored
        assert c.get("/page").status_code == 200  # the new visit's second request
    profile = profile_counting(edge, session.visitor_id, 2)
    assert profile is not None and profile.visits == 2, edge.process.output()[-2000:]
    assert profile.affinity.get("sneakers", 0) > 0  # the ended visit's interest, folded in


def timed_page(kv_dir: Path, kv_delay_ms: int, origin_delay_ms: int) -> tuple[float, str]:
    """(seconds for one page after warm-up, runtime log of that request) with a slow KV/origin."""
    with edge_in_front_of_origin(kv_dir, "--var", f"NUDGE_LOCAL_KV_DELAY_MS:{kv_delay_ms}") as e:
        with e.client() as c:
            c.get("/page")  # warm the isolate; the visit's profile is written now
            visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        assert wait_for_profile(kv_dir, visitor) is not None, e.process.output()[-2000:]  # the write is over
        # a new visitor's page: a visit's first page always reads KV (later ones may take the profile
        # the isolate holds, visitor/recent_profiles.py)
        with e.client() as c:
            before = len(e.process.output())
            start = time.perf_counter()
            r = c.get(f"/page?delay_ms={origin_delay_ms}")
            elapsed = time.perf_counter() - start
            assert r.status_code == 200 and 'id="nudge-config"' in r.text
            # the runtime's output reaches us through wrangler, a little later: until the page's log
            # line (printed once its body went through) and, when one is logged, the skipped read
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not ('{"nudge":"page"' in e.process.output()[before:]
                                                       and "profile read skipped" in e.process.output()[before:]):
                time.sleep(0.05)
            log = e.process.output()[before:]
            assert '{"nudge":"page"' in log, e.process.output()[-2000:]
            return elapsed, log


def test_an_isolates_first_pages_log_no_errors(tmp_path: Path) -> None:
    """README: an isolate's first page works without errors, in the page and in the runtime's log
    (an uncaught NoGilError from a waitUntil cleanup once showed up there on workerd)."""
    with edge_in_front_of_origin(tmp_path) as e:
        before = e.process.output().count('{"nudge":"page"')
        with e.client() as c:
            pages = [c.get(path) for path in ("/page", "/products/trail-shoe", "/page", "/collections/sneakers")]
            beacon = c.post("/_nudge/beacon", json={"pv": 1, "dwell": 3})
        assert all(r.status_code == 200 and 'id="nudge-config"' in r.text for r in pages)
        assert beacon.status_code == 204
        deadline = time.monotonic() + 15  # each page's log line is printed once its body has gone through
        while e.process.output().count('{"nudge":"page"') < before + len(pages):
            assert time.monotonic() < deadline, e.process.output()[-3000:]
            time.sleep(0.05)
        assert wait_for_kv(tmp_path, "product", "trail-shoe") is not None  # background work done too
    output = e.process.output()  # the runtime has stopped: all it printed is in
    for problem in ("NoGilError", "Traceback", "Uncaught"):
        assert not _nudges_errors(output, problem), output[-6000:]


def _nudges_errors(output: str, problem: str) -> list[str]:
    """The output lines naming `problem`, but for the errors of Miniflare's own helper Workers (its
    local observability collector, whose stack lies wholly in node_modules/miniflare), not nudge's."""
    lines = output.splitlines()
    found = []
    for i, line in enumerate(lines):
        if problem not in line:
            continue
        # the stack's frames that name a file (not V8's "<anonymous>" ones)
        stack = [s for s in lines[i + 1:i + 12] if s.lstrip().startswith("at ") and "<anonymous>)" not in s]
        if stack and all("node_modules/miniflare/dist/src/workers/" in s for s in stack):
            continue
        found.append(line)
    return found


def test_origin_fetch_and_kv_read_run_concurrently(tmp_path: Path) -> None:
    elapsed, log = timed_page(tmp_path, kv_delay_ms=600, origin_delay_ms=600)
    assert "profile read skipped" not in log  # the profile arrived in time: it was read meanwhile
    assert elapsed < 1.1, f"origin 600 ms + KV 600 ms took {elapsed:.3f} s: not concurrent"


def test_slow_kv_does_not_hold_the_page(tmp_path: Path) -> None:
    elapsed, log = timed_page(tmp_path, kv_delay_ms=3000, origin_delay_ms=0)
    assert "profile read skipped" in log, log  # decided from the cookie alone
    assert elapsed < 1.5, f"a 3 s KV held the page for {elapsed:.3f} s"


def test_missing_secret_fails_open(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_SECRET:") as e, e.client() as c:
        r = c.get("/page")
        assert r.status_code == 200 and r.text == PAGE and "set-cookie" not in r.headers
        assert c.post("/_nudge/beacon", json={}).status_code == 503
        e.process.wait_for_output("NUDGE_SECRET is not set", timeout=30)  # the log line is relayed later


BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    "headers",
    [{"user-agent": BOT_UA}, {"sec-purpose": "prefetch"}, {"sec-purpose": "prefetch;prerender"},
     {"purpose": "prefetch"}],
)
def test_bots_and_prefetches_get_the_origin_page_untouched(edge: Edge, headers: dict[str, str]) -> None:
    with edge.client() as c:
        r = c.get("/page", headers=headers)
    assert r.status_code == 200 and r.text == PAGE and "set-cookie" not in r.headers


@dataclass(frozen=True)
class KvEntry:
    key: str
    value: bytes
    expiration: float | None  # Unix seconds


def _miniflare_rows(state: Path, store: str) -> list[tuple[str, str, int | None]]:
    """(key, blob id, expiration in ms) of everything a Miniflare store ("kv", "cache") kept under
    `wrangler dev --persist-to state`: one SQLite index per namespace, beside a metadata.sqlite."""
    rows: list[tuple[str, str, int | None]] = []
    for db in sorted((state / "v3" / store).glob("miniflare-*Object/*.sqlite")):
        if db.name == "metadata.sqlite":
            continue
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows += conn.execute("SELECT key, blob_id, expiration FROM _mf_entries").fetchall()
        except sqlite3.OperationalError as exc:  # a namespace nothing was written to yet
            if "no such table" not in str(exc):
                raise
        finally:
            conn.close()
    return rows


def cached_urls(state: Path) -> list[str]:
    """The URLs the Worker's Cache API holds (Miniflare's cache, persisted in `state`)."""
    return sorted(key for key, _, _ in _miniflare_rows(state, "cache"))


def kv_entries(kv_dir: Path) -> dict[str, KvEntry]:
    """What the local KV holds now (the runtime's own store, read the way Miniflare keeps it: a row
    per key naming a blob file, written before the row). Expired keys are left out, as KV does."""
    found: dict[str, KvEntry] = {}
    now_ms = time.time() * 1000
    for key, blob_id, expiration in _miniflare_rows(kv_dir, "kv"):
        if expiration is not None and expiration <= now_ms:
            continue
        blobs = list((kv_dir / "v3" / "kv").glob(f"*/blobs/{blob_id}"))
        if blobs:
            found[key] = KvEntry(key, blobs[0].read_bytes(), None if expiration is None else expiration / 1000)
    return found


def kv_keys(kv_dir: Path) -> list[str]:
    return sorted(kv_entries(kv_dir))


def wait_for_kv(kv_dir: Path, prefix: str, name: str | None = None, seconds: float = 15) -> KvEntry | None:
    """A KV entry (`prefix:name`, any `prefix:...` when name is None) once a background write has landed."""
    deadline = time.monotonic() + seconds
    while True:
        found = [entry for key, entry in kv_entries(kv_dir).items()
                 if key == f"{prefix}:{name}" or (name is None and key.startswith(f"{prefix}:"))]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def wait_for_profile(kv_dir: Path, visitor: str, seconds: float = 15) -> KvEntry | None:
    return wait_for_kv(kv_dir, "profile", visitor, seconds)


def test_forget_erases_cookies_and_profile(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/page")
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        assert wait_for_profile(edge.kv_dir, visitor) is not None, edge.process.output()[-2000:]
        stored = kv_keys(edge.kv_dir)
        assert c.get("/_nudge/forget").status_code == 405  # a link or prefetch must not erase data
        r = c.post("/_nudge/forget")
        assert r.status_code == 200
        erased = r.json()["erased"]
        assert erased["cookies"] == ["nudge"] and erased["profile"] is True
        assert f"profile:{erased['visitor']}" in stored  # its profile was stored...
        assert all("Max-Age=0" in v for v in r.headers.get_list("set-cookie"))
        assert not any(erased["visitor"] in key for key in kv_keys(edge.kv_dir))  # ...and is gone
        again = c.post("/_nudge/forget", headers={"cookie": ""})
        assert again.json()["erased"] == {"cookies": [], "visitor": None, "profile": False, "identity_link": False}


def test_gpc_mode_tracks_nobody_who_opts_out(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_CONSENT:gpc") as e, e.client() as c:
        r = c.get("/page", headers={"sec-gpc": "1"})
        assert r.status_code == 200 and '"track":false' in r.text and "set-cookie" not in r.headers
        assert c.post("/_nudge/beacon", json={"events": []}, headers={"sec-gpc": "1"}).status_code == 204
        assert "set-cookie" not in c.post("/_nudge/beacon", json={}, headers={"sec-gpc": "1"}).headers
        tracked = c.get("/page")
        assert '"track":true' in tracked.text and len(nudge_cookies(tracked)) == 1
        erased = c.get("/page", headers={"dnt": "1"})  # opting out later erases what we had set
        assert all("Max-Age=0" in v for v in nudge_cookies(erased)) and nudge_cookies(erased)


def test_bad_consent_config_fails_open_and_tracks_nobody(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_CONSENT:opt-in") as e, e.client() as c:
        r = c.get("/page")  # opt-in without a consent cookie name: a config error
        assert r.status_code == 200 and r.text == PAGE and "set-cookie" not in r.headers
    assert "NUDGE_CONSENT_COOKIE" in e.process.output() or "cookie" in e.process.output()


def test_identity_links_devices_to_one_profile_and_forget_unlinks(edge: Edge) -> None:
    with edge.client() as laptop, edge.client() as phone:
        first = laptop.get("/login?user=customer-42")
        assert "x-nudge-user" not in first.headers  # the customer id never reaches the browser
        assert "customer-42" not in first.text
        link = wait_for_kv(edge.kv_dir, "identity")  # written in the background
        assert link is not None and "customer-42" not in link.key  # only a keyed hash
        owner = link.value.decode()
        assert owner == CODEC.decode(laptop.cookies["nudge"]).visitor_id
        phone.get("/page")
        phone.get("/login?user=customer-42")  # the phone adopts the laptop's profile
        erased = phone.post("/_nudge/forget").json()["erased"]
        assert erased["visitor"] == owner and erased["profile"] is True and erased["identity_link"] is True
        assert not any(key.startswith("identity:") for key in kv_keys(edge.kv_dir))


def test_a_shop_signed_identify_beacon_links_too(edge: Edge) -> None:
    """Issue 15: through the page only with a token the shop's server signed (NUDGE_SHOP_SECRET);
    the attacks (a bare claim, a forged or expired token) are in test_attacks_identity.py."""
    token = shop_token(SHOP_SECRET.encode(), "cust-7", int(time.time()) + 300)
    with edge.client() as c:
        c.get("/page")
        assert c.post("/_nudge/beacon", json={"events": [{"type": "identify", "token": token}]}).status_code == 204
        assert c.post("/_nudge/beacon", json={"events": [{"type": "identify", "user": ""}]}).status_code == 400
        assert c.post("/_nudge/beacon", json={"events": [{"type": "identify", "token": ""}]}).status_code == 400
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the profile records the link in the background
            entry = wait_for_profile(edge.kv_dir, visitor)
            profile = decode_profile(entry.value) if entry else None
            if profile is not None and profile.identity:
                break
            time.sleep(0.05)
        assert c.post("/_nudge/forget").json()["erased"]["identity_link"] is True


def test_product_facts_are_learned_from_json_ld(edge: Edge) -> None:
    with edge.client() as c:
        first = c.get("/products/trail-shoe")  # the URL names no category
        assert first.status_code == 200 and "<h1>Trail Shoe</h1>" in first.text
        assert wait_for_kv(edge.kv_dir, "product", "trail-shoe") is not None  # after the document ends
        c.get("/products/trail-shoe")  # from now on the page counts for its declared category
        session = CODEC.decode(c.cookies["nudge"])
    assert "sneakers" in session.categories and len(session.categories["sneakers"].products) == 1
    assert [p.views for p in session.products if p.id == "trail-shoe"] == [2]


def test_profile_ttl_is_configurable(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/page")
        entry = wait_for_profile(edge.kv_dir, CODEC.decode(c.cookies["nudge"]).visitor_id)
        assert entry is not None and entry.expiration is not None, edge.process.output()[-2000:]
    assert abs(entry.expiration - (time.time() + PROFILE_TTL_DAYS * 86_400)) < 120


HOME_BANNER = """
id = "welcome-banner"
trigger = "page_load"
pages = ["home"]
[action]
kind = "banner"
title = "Welcome!"
body = "Free shipping this week"
"""


def wait_for_rules(edge: Edge, client: httpx.Client, version: str, seconds: float = 15) -> None:
    """Until the edge serves the published rule set `version` (isolates look in the background)."""
    deadline = time.monotonic() + seconds
    while client.get("/_nudge/health").json()["rules_version"] != version:
        assert time.monotonic() < deadline, f"never served rules {version}:\n{edge.process.output()[-2000:]}"
        time.sleep(0.1)


def test_published_rules_go_live_without_a_restart(tmp_path: Path) -> None:
    kv_dir, rules_dir = tmp_path / "kv", tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    with edge_in_front_of_origin(kv_dir, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e, e.client() as c:
        assert "Welcome!" not in c.get("/").text
        health = c.get("/_nudge/health").json()
        assert health["rules_version"].startswith("bundled:")
        (rules_dir / "welcome-banner.toml").write_text(HOME_BANNER)
        version = publish(rules_dir, kv_dir)
        wait_for_rules(e, c, version)  # the refresh runs in the background at most every second
        page = c.get("/").text
        assert 'data-nudge-rule="welcome-banner"' in page and "Free shipping this week" in page
        assert c.get("/_nudge/health").json()["rules"] == health["rules"] + 1


def test_a_new_isolate_serves_the_published_rules_from_its_first_request(tmp_path: Path) -> None:
    kv_dir, rules_dir = tmp_path / "kv", tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    (rules_dir / "welcome-banner.toml").write_text(HOME_BANNER)
    version = publish(rules_dir, kv_dir)  # published after the deploy: not in the bundle
    with edge_in_front_of_origin(kv_dir) as e, e.client() as c:
        first = c.get("/")
        assert 'data-nudge-rule="welcome-banner"' in first.text
        assert c.get("/_nudge/health").json()["rules_version"] == version


def test_invalid_rules_are_never_published_and_corrupt_blobs_are_ignored(tmp_path: Path) -> None:
    kv_dir, rules_dir = tmp_path / "kv", tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    (rules_dir / "broken.toml").write_text('id = "x"\ntrigger = "sometimes"\n[action]\nkind = "modal"\ntitle = "t"\n')
    done = subprocess.run([sys.executable, "-m", "nudge_tools", "rules", "publish", "--dir", str(rules_dir),
                           "--persist-to", str(kv_dir)], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, **checkout_python_path()})
    assert done.returncode == 1 and "broken.toml:2: trigger: unknown trigger" in done.stderr
    assert "nothing published" in done.stderr
    assert "rules:current" not in kv_keys(kv_dir)
    # A pointer to a corrupt blob (written by hand): the Worker keeps serving the bundled rules.
    (tmp_path / "junk").write_bytes(b"\xc1 not a rule set")
    (tmp_path / "pointer").write_text("deadbeefdeadbeef")
    for key, path in (("rules:deadbeefdeadbeef", tmp_path / "junk"), ("rules:current", tmp_path / "pointer")):
        subprocess.run([str(REPO_ROOT / "node_modules" / ".bin" / "wrangler"), "kv", "key", "put", "--local",
                        "--persist-to", str(kv_dir), "--binding", "NUDGE_KV", key, "--path", str(path)],
                       cwd=REPO_ROOT, env={**os.environ, **edge_environment()}, check=True, capture_output=True)
    with edge_in_front_of_origin(kv_dir, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e, e.client() as c:
        first = c.get("/")  # an isolate's first request looks for published rules
        assert first.status_code == 200 and 'id="nudge-config"' in first.text
        deadline = time.monotonic() + 15
        while e.process.output().count("published rules unusable") < 2:  # the first look, then a refresh
            assert time.monotonic() < deadline, e.process.output()[-3000:]
            r = c.get("/")
            assert r.status_code == 200 and 'id="nudge-config"' in r.text
            time.sleep(0.2)
        assert c.get("/_nudge/health").json()["rules_version"].startswith("bundled:")


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/no-transform", {}), ("/download", {}), ("/page", {"range": "bytes=0-10"})],
)
def test_html_the_origin_asks_to_keep_passes_byte_identical(edge: Edge, path: str, headers: dict[str, str]) -> None:
    with edge.client() as c:
        r = c.get(path, headers=headers)
    assert r.status_code == 200 and r.text == PAGE and not nudge_cookies(r)


def test_head_requests_pass_through(edge: Edge) -> None:
    with edge.client() as c:
        r = c.head("/page")
    assert r.status_code == 200 and r.content == b"" and not nudge_cookies(r)
