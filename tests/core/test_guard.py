"""The request guards at the trust boundary (nudge.guard), and the beacon endpoint's use of them."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from nudge.engine import Reply
from nudge.guard import (
    beacon_media_refusal,
    cross_origin_refusal,
    forwarded_for,
    is_nudge_header,
    location_value,
    origin_of,
    shareable_page,
    shareable_vary,
    shared_by_policy,
)
from nudge.visitor.cookies import without_our_cookies
from nudge.visitor.session import Session

from .factories import NOW, make_app

APP = make_app()

SITE = "https://shop.example"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_are_never_refused(method: str) -> None:
    assert cross_origin_refusal(method, "cross-site", "https://evil.example", SITE) is None


@pytest.mark.parametrize("fetch_site", ["same-origin", "Same-Origin", " same-origin "])
def test_the_browsers_same_origin_verdict_is_accepted(fetch_site: str) -> None:
    assert cross_origin_refusal("POST", fetch_site, None, SITE) is None


@pytest.mark.parametrize("fetch_site", ["same-site", "cross-site", "none", ""])
def test_any_other_fetch_site_is_refused_whatever_the_origin_says(fetch_site: str) -> None:
    # another subdomain or port is same-site, not same-origin
    refusal = cross_origin_refusal("POST", fetch_site, SITE, SITE)
    assert refusal is not None and "same-origin" in refusal


@pytest.mark.parametrize("origin", [SITE, "https://SHOP.example", "https://shop.example:443", "https://shop.example/"])
def test_without_fetch_site_the_own_origin_is_accepted(origin: str) -> None:
    assert cross_origin_refusal("POST", None, origin, SITE) is None
    assert cross_origin_refusal("DELETE", None, origin, SITE + ":443") is None


@pytest.mark.parametrize("origin", [
    "https://evil.example", "https://www.shop.example", "https://shop.example:8443", "http://shop.example",
    "null", "", "https://shop.example.evil.example", "file://", "garbage", "https://shop.example:99999",
])
def test_without_fetch_site_any_other_origin_is_refused(origin: str) -> None:
    assert cross_origin_refusal("POST", None, origin, SITE) == "Origin is not this site"


def test_local_ports_are_origins_of_their_own() -> None:
    site = "http://127.0.0.1:8787"
    assert cross_origin_refusal("POST", None, "http://127.0.0.1:8787", site) is None
    assert cross_origin_refusal("POST", None, "http://127.0.0.1:8788", site) is not None
    assert cross_origin_refusal("POST", None, "http://localhost:8787", site) is not None


def test_a_request_without_either_header_comes_from_no_browser_and_goes_on() -> None:
    assert cross_origin_refusal("POST", None, None, SITE) is None


def test_origins_are_serialized_as_browsers_do() -> None:
    assert origin_of("HTTPS://Shop.Example:443/path?q") == "https://shop.example"
    assert origin_of("http://[::1]:8787/") == "http://[::1]:8787"
    assert origin_of("null") is None and origin_of("ftp://x") is None and origin_of("http://") is None


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=UTF-8", "APPLICATION/JSON"])
def test_the_beacon_takes_json(content_type: str) -> None:
    assert beacon_media_refusal(content_type) is None


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None, "", "application/jsonx"])
def test_the_beacon_refuses_html_form_encodings_and_the_rest(content_type: str | None) -> None:
    refusal = beacon_media_refusal(content_type)
    assert refusal is not None and "application/json" in refusal


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_the_beacon_endpoint_answers_415_and_changes_nothing(content_type: str) -> None:
    session = Session.fresh(NOW)
    before = APP.codec.encode(session)
    body = json.dumps({"events": [{"type": "add_to_cart", "items": [{"id": "x", "quantity": 1}]}]}).encode()
    reply = APP.read_beacon("POST", body, content_type)  # refused before the session is looked at
    assert isinstance(reply, Reply) and reply.status == 415 and reply.content_type.startswith("text/plain")
    assert not any(name.lower() == "set-cookie" for name, _ in reply.headers)
    assert APP.codec.encode(session) == before


@pytest.mark.parametrize("name", ["X-Nudge-Offer", "x-nudge-user", "X_Nudge_User", "x_nudge_offer", "X-NUDGE_ORDER",
                                  "x_nudge-anything"])
def test_every_spelling_of_x_nudge_is_ours(name: str) -> None:
    assert is_nudge_header(name)


@pytest.mark.parametrize("name", ["X-Nudger", "x-nudgeoffer", "nudge", "X-Forwarded-Host", "x_nudgex"])
def test_other_headers_are_not(name: str) -> None:
    assert not is_nudge_header(name)


@pytest.mark.parametrize("path, sent", [
    ("/\u3002x", "/%E3%80%82x"),
    ("/\u00e9t\u00e9", "/%C3%A9t%C3%A9"),
    ("/a b\r\nSet-Cookie: x", "/a%20b%0D%0ASet-Cookie:%20x"),
    ("/already%20encoded?q=1&r=%C3%A9#f", "/already%20encoded?q=1&r=%C3%A9#f"),
    ("/sale?x=\U0001f600", "/sale?x=%F0%9F%98%80"),
])
def test_locations_are_percent_encoded_and_round_trip(path: str, sent: str) -> None:
    assert location_value(path) == sent
    assert sent.isascii() and sent.isprintable() and " " not in sent
    assert unquote(sent) == unquote(path)


def test_a_lone_surrogate_does_not_raise() -> None:
    assert location_value("/x\ud800").isascii()


@pytest.mark.parametrize("vary", [None, "", "Accept-Encoding", "accept-encoding", " Accept-Encoding , "])
def test_vary_on_encoding_alone_may_be_shared(vary: str | None) -> None:
    assert shareable_vary(vary)


@pytest.mark.parametrize("vary", ["User-Agent", "Accept-Language", "Accept-Encoding, User-Agent", "Cookie", "*",
                                  "accept-encoding,origin"])
def test_vary_on_anything_else_is_never_shared(vary: str) -> None:
    assert not shareable_vary(vary)


PUBLIC = {"content-type": "text/html; charset=utf-8", "cache-control": "public, max-age=60"}


def test_shareable_pages() -> None:
    assert shareable_page(200, PUBLIC)
    assert shareable_page(200, {**PUBLIC, "vary": "Accept-Encoding"})
    assert shareable_page(200, {**PUBLIC, "cache-control": "s-maxage=60"})
    assert not shareable_page(200, {**PUBLIC, "vary": "User-Agent"})
    assert not shareable_page(200, {**PUBLIC, "vary": "Accept-Language"})
    assert not shareable_page(200, {**PUBLIC, "set-cookie": "a=1"})
    assert not shareable_page(404, PUBLIC)
    assert not shareable_page(200, {**PUBLIC, "content-type": "application/json"})
    for directive in ("private", "no-store", "no-cache", "max-age=60"):
        assert not shareable_page(200, {**PUBLIC, "cache-control": directive})


def test_a_cookie_for_one_visitor_does_not_make_the_pages_policy_private() -> None:
    cookied = {**PUBLIC, "set-cookie": "session=1"}
    assert not shareable_page(200, cookied)  # this answer is not kept
    assert shared_by_policy(200, cookied)  # but the next visitor's copy may be: still looked up
    assert shared_by_policy(200, PUBLIC)
    for unshared in ({**PUBLIC, "cache-control": "private"}, {**PUBLIC, "vary": "Cookie"},
                     {**PUBLIC, "content-type": "application/json"}):
        assert not shared_by_policy(200, {**unshared, "set-cookie": "session=1"})
    assert not shared_by_policy(404, PUBLIC)


def test_every_nudge_cookie_stays_at_the_edge() -> None:
    header = "shop=1; nudge=a.b; nudge_offer=x; nudge_dw=1.2; nudge_future=z; nudgey=keep; nudge_msg=m"
    assert without_our_cookies(header) == "shop=1; nudgey=keep"
    assert without_our_cookies("nudge=1; nudge_preview=2") is None


@pytest.mark.parametrize("given, client, sent", [
    (None, "198.51.100.2", "198.51.100.2"),
    ("203.0.113.7", "198.51.100.2", "203.0.113.7, 198.51.100.2"),  # the chain as it came, then who connected
    ("203.0.113.7, 198.51.100.2", "198.51.100.2", "203.0.113.7, 198.51.100.2"),  # Cloudflare appended it already
    ("203.0.113.7", None, "203.0.113.7"),  # nobody known to add: the chain passes on
    (None, None, None),
    (" , ", "", None),
])
def test_forwarded_for_ends_in_the_connecting_address(given: str | None, client: str | None, sent: str | None) -> None:
    assert forwarded_for(given, client) == sent
