"""src/entry.py in Pyodide through the local edge runtime, in front of a scriptable origin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nudge.profile import decode_profile
from nudge.session import SessionCodec
from nudge.signing import Signer
from tests.support.origin import ASSET, PAGE, serving_origin
from tests.support.processes import REPO_ROOT, Process, local_edge
from tests.support.traffic import publish

pytestmark = pytest.mark.runtime
SECRET = "runtime-test-secret"
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
def edge_in_front_of_origin(kv_dir: Path, *flags: str,
                            origin: Callable[[], ContextManager[tuple[str, list[dict[str, str]]]]] = serving_origin,
                            ) -> Iterator[Edge]:
    """The local edge in front of a scriptable origin (tests/support/origin.py unless told)."""
    with origin() as (origin_url, seen), local_edge(origin_url, kv_dir, SECRET, *flags) as (url, process):
        yield Edge(url, origin_url, seen, process, kv_dir)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv")) as e:
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
        with c.stream("GET", "/slow-stream?pause=1.5") as r:
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
            bad = c.post("/_nudge/beacon", content=body, headers={"content-type": "application/json"})
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
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any("profile" in p.name for p in edge.kv_dir.rglob("*")):
            break
        time.sleep(0.1)
    assert any("profile" in p.name for p in edge.kv_dir.rglob("*")), list(edge.kv_dir.rglob("*"))


def test_profile_written_in_the_background_counts_the_visit(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path) as e, e.client() as c:
        c.get("/page")
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        c.get("/page")  # the same visit: no second write
        path = wait_for_profile(tmp_path, visitor)
        assert path is not None, (visitor, sorted(map(str, tmp_path.rglob("*"))), e.process.output())
        profile = decode_profile(path.read_bytes())
    assert profile is not None and profile.visits == 1 and profile.first_seen > 0


def timed_page(kv_dir: Path, kv_delay_ms: int, origin_delay_ms: int) -> tuple[float, str]:
    """(seconds for one page after warm-up, runtime log of that request) with a slow KV/origin."""
    with edge_in_front_of_origin(kv_dir, "--var", f"NUDGE_LOCAL_KV_DELAY_MS:{kv_delay_ms}") as e, e.client() as c:
        c.get("/page")  # warm the isolate; the visit's profile is written now
        time.sleep(kv_delay_ms / 1000 + 0.2)
        before = len(e.process.output())
        start = time.perf_counter()
        r = c.get(f"/page?delay_ms={origin_delay_ms}")
        elapsed = time.perf_counter() - start
        assert r.status_code == 200 and 'id="nudge-config"' in r.text
        return elapsed, e.process.output()[before:]


def test_origin_fetch_and_kv_read_run_concurrently(tmp_path: Path) -> None:
    elapsed, log = timed_page(tmp_path, kv_delay_ms=600, origin_delay_ms=600)
    assert "profile read skipped" not in log  # the profile arrived in time: it was read meanwhile
    assert elapsed < 1.1, f"origin 600 ms + KV 600 ms took {elapsed:.3f} s: not concurrent"


def test_slow_kv_does_not_hold_the_page(tmp_path: Path) -> None:
    elapsed, log = timed_page(tmp_path, kv_delay_ms=3000, origin_delay_ms=0)
    assert "profile read skipped" in log  # decided from the cookie alone
    assert elapsed < 1.5, f"a 3 s KV held the page for {elapsed:.3f} s"


def test_missing_secret_fails_open(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_SECRET:") as e, e.client() as c:
        r = c.get("/page")
        assert r.status_code == 200 and r.text == PAGE and "set-cookie" not in r.headers
        assert c.post("/_nudge/beacon", json={}).status_code == 503
    assert "NUDGE_SECRET is not set" in e.process.output()


BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    "headers",
    [{"user-agent": BOT_UA}, {"sec-purpose": "prefetch"}, {"sec-purpose": "prefetch;prerender"}, {"purpose": "prefetch"}],
)
def test_bots_and_prefetches_get_the_origin_page_untouched(edge: Edge, headers: dict[str, str]) -> None:
    with edge.client() as c:
        r = c.get("/page", headers=headers)
    assert r.status_code == 200 and r.text == PAGE and "set-cookie" not in r.headers


def wait_for_kv(kv_dir: Path, prefix: str, name: str | None = None, seconds: float = 15) -> Path | None:
    """A KV value file (`prefix:name`, any name when None) once a background write has landed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [p for p in kv_dir.rglob("*") if p.is_file() and p.parent.name == prefix
                 and not p.name.endswith(".meta.json") and (name is None or p.name == name)]
        if found:
            return found[0]
        time.sleep(0.05)
    return None


def wait_for_profile(kv_dir: Path, visitor: str) -> Path | None:
    return wait_for_kv(kv_dir, "profile", visitor)


def test_forget_erases_cookies_and_profile(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/page")
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        assert wait_for_profile(edge.kv_dir, visitor) is not None, edge.process.output()[-2000:]
        stored = {str(p.relative_to(edge.kv_dir)) for p in edge.kv_dir.rglob("*") if p.is_file()}
        assert c.get("/_nudge/forget").status_code == 405  # a link or prefetch must not erase data
        r = c.post("/_nudge/forget")
        assert r.status_code == 200
        erased = r.json()["erased"]
        assert erased["cookies"] == ["nudge"] and erased["profile"] is True
        assert any(erased["visitor"] in path for path in stored)  # its profile was stored...
        assert all("Max-Age=0" in v for v in r.headers.get_list("set-cookie"))
        assert not any(erased["visitor"] in str(p) for p in edge.kv_dir.rglob("*"))  # ...and is gone
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
        assert link is not None and "customer-42" not in link.name  # only a keyed hash
        owner = ""
        deadline = time.monotonic() + 15
        while len(owner) != 16 and time.monotonic() < deadline:  # the file may be mid-write
            owner = link.read_text()
            time.sleep(0.05)
        assert owner == CODEC.decode(laptop.cookies["nudge"]).visitor_id
        phone.get("/page")
        phone.get("/login?user=customer-42")  # the phone adopts the laptop's profile
        erased = phone.post("/_nudge/forget").json()["erased"]
        assert erased["visitor"] == owner and erased["profile"] is True and erased["identity_link"] is True
        assert not any(p.is_file() and p.parent.name == "identity" for p in edge.kv_dir.rglob("*"))


def test_identify_beacon_links_too(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/page")
        assert c.post("/_nudge/beacon", json={"events": [{"type": "identify", "user": "cust-7"}]}).status_code == 204
        assert c.post("/_nudge/beacon", json={"events": [{"type": "identify", "user": ""}]}).status_code == 400
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the profile records the link in the background
            path = wait_for_profile(edge.kv_dir, visitor)
            profile = decode_profile(path.read_bytes()) if path else None
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


def test_profile_ttl_is_configurable(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_PROFILE_TTL_DAYS:2") as e, e.client() as c:
        c.get("/page")
        deadline = time.monotonic() + 5
        metas: list[Path] = []
        while not metas and time.monotonic() < deadline:
            time.sleep(0.1)
            metas = [p for p in tmp_path.rglob("*.meta.json") if p.parent.name == "profile"]
    expiration = json.loads(metas[0].read_text())["expiration"]
    assert abs(expiration - (time.time() + 2 * 86_400)) < 120


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
    done = subprocess.run([sys.executable, "-m", "nudge", "rules", "publish", "--dir", str(rules_dir),
                           "--persist-to", str(kv_dir)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "broken.toml:2: trigger: unknown trigger" in done.stderr
    assert "nothing published" in done.stderr
    assert not kv_dir.exists() or not any(kv_dir.rglob("current"))
    # A pointer to a corrupt blob (written by hand): the Worker keeps serving the bundled rules.
    (tmp_path / "junk").write_bytes(b"\xc1 not a rule set")
    (tmp_path / "pointer").write_text("deadbeefdeadbeef")
    subprocess.run(["node", str(REPO_ROOT / "local-edge" / "kv-put.mjs"), "--persist-to", str(kv_dir),
                    f"rules:deadbeefdeadbeef={tmp_path / 'junk'}", f"rules:current={tmp_path / 'pointer'}"],
                   check=True, capture_output=True)
    with edge_in_front_of_origin(kv_dir, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e, e.client() as c:
        c.get("/")
        time.sleep(1.2)
        r = c.get("/")
        assert r.status_code == 200 and 'id="nudge-config"' in r.text
        assert c.get("/_nudge/health").json()["rules_version"].startswith("bundled:")
    assert "published rules unusable" in e.process.output()


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
