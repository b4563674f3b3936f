"""Attacks on nudge's request handling, each run through the real runtime (workerd) as an attacker
would send it (issue 15, items 3, 6, 7, 8, 9 and 11). Each failed on the code before the fix; the
requests a browser of this site sends are checked alongside, so the guards refuse only attacks.

- cross-site and same-site (another port or subdomain) POSTs to /_nudge/beacon and /_nudge/forget
  (login CSRF, erasing a profile) are refused with 403, nothing stored, no cookie set or erased;
- the beacon takes JSON only: an HTML form's encodings get 415;
- X-Nudge-* headers in any spelling (X_Nudge_User, which PHP, Django and Rack read as
  X-Nudge-User) never reach the origin;
- a Location nudge builds round-trips any Unicode path, and when nudge's own code fails the
  origin's page comes through a fallback that drops nudge's cookies and headers;
- origin HTML that varies on more than Accept-Encoding is never shared from the edge cache;
- a body the edge cannot decode (corrupt gzip) gets a 502 with a status line, at once.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest

from nudge.rules.preview import PreviewTokens
from nudge.signing import Signer
from tests.runtime.test_faults import Watch
from tests.runtime.test_worker import (
    CODEC,
    SECRET,
    Edge,
    cached_urls,
    edge_in_front_of_origin,
    kv_keys,
    nudge_cookies,
    wait_for_profile,
)

pytestmark = pytest.mark.runtime
KEYS = [SECRET.encode()]
EVIL = "https://evil.example"
IDENTIFY = b'{"events":[{"type":"identify","user":"victim-42"}]}'


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    # the fault origin serves the scriptable origin's pages too, plus /fault/*
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv")) as e:
        yield e


def own_origin(edge: Edge) -> dict[str, str]:
    """What a browser sends with a fetch or sendBeacon from one of this site's own pages."""
    return {"origin": edge.url, "sec-fetch-site": "same-origin"}


def visitor(edge: Edge, client: httpx.Client) -> str:
    """A tracked visitor (one page seen) whose profile has landed in KV; its visitor id."""
    assert client.get("/page").status_code == 200
    found = CODEC.decode(client.cookies["nudge"]).visitor_id
    assert wait_for_profile(edge.kv_dir, found) is not None, edge.process.output()[-2000:]
    return found


def refused(resp: httpx.Response, status: int) -> None:
    """A refusal: that status, a short text, and no cookie set or erased."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("text/plain") and 0 < len(resp.text) < 200
    assert "set-cookie" not in resp.headers


# -- CSRF and the origin check (items 3 and 8) ----------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"origin": EVIL, "sec-fetch-site": "cross-site"},  # a form on another site (Chromium, Firefox, Safari)
    {"origin": EVIL},  # a browser that sends no Sec-Fetch-Site
    {"origin": "null", "sec-fetch-site": "cross-site"},  # a sandboxed frame or data: URL
    {"origin": "null"},
])
def test_a_cross_site_form_cannot_identify_the_visitor(edge: Edge, headers: dict[str, str]) -> None:
    with edge.client() as c:
        visitor(edge, c)
        before = c.cookies["nudge"]
        r = c.post("/_nudge/beacon", content=IDENTIFY, headers={**headers, "content-type": "text/plain"})
        refused(r, 403)
        assert c.cookies["nudge"] == before


@pytest.mark.parametrize("other", ["http://127.0.0.1:1", "http://localhost:{port}", "http://shop.127.0.0.1.nip.io:{port}"])
def test_a_same_site_page_on_another_port_or_host_cannot_write_events(edge: Edge, other: str) -> None:
    port = edge.url.rsplit(":", 1)[1]
    with edge.client() as c:
        visitor(edge, c)
        body = {"pv": 1, "dwell": 5, "events": [{"type": "add_to_cart", "items": [{"id": "x", "quantity": 1}]}]}
        for headers in ({"origin": other.format(port=port), "sec-fetch-site": "same-site"},
                        {"origin": other.format(port=port)}):
            refused(c.post("/_nudge/beacon", json=body, headers=headers), 403)


def test_a_same_site_page_cannot_erase_a_visitors_profile(edge: Edge) -> None:
    with edge.client() as c:
        who = visitor(edge, c)
        for headers in ({"origin": "http://127.0.0.1:1", "sec-fetch-site": "same-site"}, {"origin": EVIL},
                        {"sec-fetch-site": "cross-site"}):
            refused(c.post("/_nudge/forget", headers=headers), 403)
        assert f"profile:{who}" in kv_keys(edge.kv_dir)  # refused before anything was erased
        assert c.cookies.get("nudge")
        # the shop's own page may: the forget button works
        r = c.post("/_nudge/forget", headers=own_origin(edge))
        assert r.status_code == 200 and r.json()["erased"]["profile"] is True
    assert f"profile:{who}" not in kv_keys(edge.kv_dir)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_the_beacon_refuses_html_form_encodings_even_from_its_own_origin(edge: Edge, content_type: str) -> None:
    with edge.client() as c:
        visitor(edge, c)
        for headers in (own_origin(edge), {}):  # with or without the browser's headers
            r = c.post("/_nudge/beacon", content=IDENTIFY, headers={**headers, "content-type": content_type})
            refused(r, 415)


@pytest.mark.parametrize("headers", [
    {"origin": "{url}", "sec-fetch-site": "same-origin"},  # sendBeacon / fetch from the shop's page
    {"origin": "{url}"},  # a browser without Sec-Fetch-Site
    {},  # no browser: a server-side client, documented as accepted
])
def test_the_beacon_from_the_shops_own_pages_is_accepted(edge: Edge, headers: dict[str, str]) -> None:
    with edge.client() as c:
        visitor(edge, c)
        sent = {k: v.format(url=edge.url) for k, v in headers.items()}
        r = c.post("/_nudge/beacon", json={"pv": 1, "dwell": 3}, headers=sent)
        assert r.status_code == 204 and nudge_cookies(r)


def answers_on_one_connection(edge: Edge, first: bytes) -> list[bytes]:
    """The status lines the Worker sends for `first` and a GET /_nudge/health pipelined behind it
    on one connection (both sent before any answer is read), until it closes or 5 s pass."""
    host, port = edge.url.removeprefix("http://").split(":")
    health = f"GET /_nudge/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    received = b""
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(first + health)
        deadline = time.monotonic() + 5
        while received.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break  # the Worker closed the connection
            received += chunk
    return re.findall(rb"HTTP/1\.1 \d{3}", received)


@pytest.mark.parametrize("origin, status", [(EVIL, b"403"), (None, b"413")])
def test_refusals_keep_the_connection_usable(edge: Edge, origin: str | None, status: bytes) -> None:
    """A request answered without reading its body (403, or 413 by its declared length) leaves the
    connection fit for the next request: the body is drained (passThroughOnException used to buffer
    it; without that the runtime closed the connection with the next request unanswered)."""
    body = b"{" + b" " * 9000 + b"}"
    host = edge.url.removeprefix("http://")
    head = f"POST /_nudge/beacon HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += f"Origin: {origin}\r\n" if origin else ""
    head += f"Content-Length: {len(body)}\r\n\r\n"
    assert answers_on_one_connection(edge, head.encode() + body) == [b"HTTP/1.1 " + status, b"HTTP/1.1 200"]


# -- X-Nudge-* in any spelling (item 9) -----------------------------------------------------------


def test_no_spelling_of_x_nudge_reaches_the_origin(edge: Edge) -> None:
    forged = {"X_Nudge_Offer": "code=FREE; percent=90", "x_nudge_user": "victim-42", "X-NUDGE-USER": "victim-42",
              "X-Nudge_Order": "id=1; value=999999", "x_nudge-offer-applied": "1"}
    with edge.client() as c:
        r = c.get("/headers", headers=forged)
    seen = r.json()
    assert not [name for name in seen if name.replace("_", "-").startswith("x-nudge")], seen


# -- Locations and failing open (item 6) ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/%E3%80%82x", "/%C3%A9t%C3%A9", "/sale/%F0%9F%91%9F?size=42"])
def test_a_preview_link_to_any_unicode_path_round_trips(edge: Edge, path: str) -> None:
    token = PreviewTokens(Signer(KEYS, "preview")).mint("sneakers-exit-intent", 0, int(time.time()), 1)
    asked = len(edge.seen)
    with edge.client() as c:
        # the link carries the path once encoded, as `nudge preview` writes it: nudge reads /。x
        r = c.get(f"/_nudge/preview?t={quote(token)}&path={quote(unquote(path), safe='')}",
                  headers={"cookie": "nudge=x.y; nudge_offer=z"})
    assert r.status_code == 303 and r.headers["location"] == path
    assert len(edge.seen) == asked  # answered by nudge: nothing forwarded to the origin


def test_when_nudge_fails_the_page_comes_without_nudges_cookies_or_headers(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path, "--var", "NUDGE_LOCAL_CRASH:pages") as e, e.client() as c:
        r = c.get("/headers", headers={"cookie": "shop=1; nudge=a.b; nudge_offer=c.d; nudge_dw=1.5; nudge_next=1",
                                       "x-nudge-offer": "code=FREE; percent=90", "X_Nudge_User": "victim-42"})
        assert r.status_code == 200 and "set-cookie" not in r.headers
        seen = r.json()
        assert seen["cookie"] == "shop=1"
        assert not [name for name in seen if name.replace("_", "-").startswith("x-nudge")], seen
        page = c.get("/page")
        assert page.status_code == 200 and 'id="nudge-config"' not in page.text and "<h1>Hello</h1>" in page.text
        e.process.wait_for_output("answering through the fallback", timeout=30)  # the log line is relayed later


# -- the edge cache (item 7) ----------------------------------------------------------------------


@pytest.mark.parametrize("vary", ["User-Agent", "Accept-Language", "Accept-Encoding, User-Agent"])
def test_html_varying_on_other_headers_is_never_shared(edge: Edge, vary: str) -> None:
    varied = f"/collections/varied?cache=public,max-age=600&vary={quote(vary)}"
    control = f"/collections/control?cache=public,max-age=600&vary=Accept-Encoding&for={quote(vary)}"
    with edge.client() as c:
        assert c.get(varied, headers={"user-agent": "Browser A", "accept-language": "fr"}).status_code == 200
        assert c.get(control).status_code == 200
        deadline = time.monotonic() + 10  # the control is kept once its background write lands
        while not any(url.endswith(control) for url in cached_urls(edge.kv_dir)):
            assert time.monotonic() < deadline, "the control page was never kept"
            time.sleep(0.05)
        assert not any(url.endswith(varied) for url in cached_urls(edge.kv_dir))
        asked = len(edge.seen)
        assert c.get(varied, headers={"user-agent": "Browser B", "accept-language": "de"}).status_code == 200
        assert len(edge.seen) == asked + 1  # asked the origin again: its variant for this browser
        again = len(edge.seen)
        assert c.get(control).status_code == 200 and len(edge.seen) == again  # Accept-Encoding alone: shared


# -- a body the edge cannot decode (item 11) ------------------------------------------------------


@pytest.mark.parametrize("path", ["/fault/bad-gzip", "/fault/bad-gzip?type=application/json",
                                  "/fault/bad-gzip?cache=public,max-age=600"])
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_corrupt_gzip_body_gets_a_502_at_once(edge: Edge, path: str, encoding: str) -> None:
    watch = Watch(edge)
    for _ in range(2):  # and is never kept in the edge cache
        started = time.monotonic()
        with httpx.Client(base_url=edge.url, timeout=10) as c:
            r = c.get(path, headers={"accept-encoding": encoding})
        assert r.status_code == 502 and r.text.startswith("Bad Gateway"), (r.status_code, r.text)
        assert "set-cookie" not in r.headers and time.monotonic() - started < 3
    assert "Gzip decompression failed" in watch.assert_clean(f"GET {path}")  # said once, nothing escaped


# -- the same in a real browser -------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
FORM_ATTACK = """(target) => {
  const form = Object.assign(document.createElement("form"), {method: "POST", action: target, enctype: "text/plain"});
  const field = Object.assign(document.createElement("input"), {name: '{"events":[{"type":"identify","user":"x","z":"',
                                                                value: '"}]}'});
  form.appendChild(field); document.body.appendChild(form); form.submit();
}"""
SEND_BEACON = """() => navigator.sendBeacon("/_nudge/beacon",
  new Blob([JSON.stringify({pv: 1, dwell: 2})], {type: "application/json"}))"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium (make chromium)")
def test_in_chromium_our_beacon_goes_through_and_a_form_on_another_port_does_not(edge: Edge) -> None:
    """Chromium sends our client's sendBeacon (a Blob typed application/json: allowed same-origin)
    with Sec-Fetch-Site: same-origin and is answered 204; the classic login-CSRF form (text/plain,
    auto-submitted from a page on the same host, another port) arrives same-site and gets 403."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(edge.url + "/page")
            with page.expect_response(lambda r: r.url.endswith("/_nudge/beacon")) as ours:
                assert page.evaluate(SEND_BEACON) is True
            sent = ours.value.request.all_headers()
            assert ours.value.status == 204 and sent["sec-fetch-site"] == "same-origin"
            assert sent["content-type"] == "application/json" and sent["origin"] == edge.url
            attacker = browser.new_page()
            attacker.goto(edge.origin + "/page")  # 127.0.0.1, another port: same-site, not same-origin
            with attacker.expect_response(lambda r: r.url.endswith("/_nudge/beacon")) as theirs:
                attacker.evaluate(FORM_ATTACK, edge.url + "/_nudge/beacon")
            assert theirs.value.status == 403 and theirs.value.request.all_headers()["sec-fetch-site"] == "same-site"
            assert "set-cookie" not in theirs.value.headers
        finally:
            browser.close()
