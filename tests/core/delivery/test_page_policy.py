"""Which origin answers nudge rewrites or keeps in the edge cache, and which request headers reach
the origin (delivery/page_policy.py): the decisions the runtime asks about every response."""

from __future__ import annotations

import pytest

from nudge.delivery.page_policy import (
    MAX_CACHED_BODY,
    charset,
    decoded_by_runtime,
    edge_cacheable,
    forwarded,
    is_page,
    needs_probe,
    too_big_to_keep,
)

HTML = {"content-type": "text/html; charset=utf-8"}


def test_a_whole_html_answer_to_a_get_is_a_page() -> None:
    assert is_page("GET", False, 200, HTML, True)
    assert is_page("GET", False, 200, {"content-type": "TEXT/HTML", "content-encoding": " GZIP "}, True)


@pytest.mark.parametrize(("method", "ranged", "status", "headers", "has_body"), [
    ("POST", False, 200, HTML, True),
    ("HEAD", False, 200, HTML, True),
    ("GET", True, 200, HTML, True),  # a range: the bytes asked for, untouched
    ("GET", False, 206, HTML, True),
    ("GET", False, 304, HTML, True),
    ("GET", False, 200, HTML, False),  # no body to rewrite
    ("GET", False, 200, {"content-type": "application/json"}, True),
    ("GET", False, 200, {}, True),  # no Content-Type: not known to be HTML
    ("GET", False, 200, {**HTML, "cache-control": "public, No-Transform"}, True),
    ("GET", False, 200, {**HTML, "content-disposition": "Attachment; filename=a.html"}, True),
    ("GET", False, 200, {**HTML, "content-encoding": "zstd"}, True),  # not decoded by the runtime's fetch
    ("GET", False, 200, {"content-type": "text/html; charset=UTF-16LE"}, True),  # "<" is not ASCII's byte
    ("GET", False, 200, {"content-type": 'text/html; charset="iso-2022-jp"'}, True),
])
def test_anything_else_passes_through_byte_identical(method: str, ranged: bool, status: int,
                                                      headers: dict[str, str], has_body: bool) -> None:
    assert not is_page(method, ranged, status, headers, has_body)


@pytest.mark.parametrize(("content_type", "expected"), [
    ("text/html", ""),
    ("text/html; charset=utf-8", "utf-8"),
    ("text/html;charset=\"windows-1252\"", "windows-1252"),
    ("text/html; foo=bar; charset='koi8-r' ", "koi8-r"),
    ("text/html; charsetx=utf-16", ""),  # another parameter whose name starts the same
])
def test_the_charset_parameter_is_read_as_declared(content_type: str, expected: str) -> None:
    assert charset(content_type) == expected


def test_only_plain_gets_without_an_offer_or_credentials_come_from_the_edge_cache() -> None:
    assert edge_cacheable("", "GET", {}, {})
    assert edge_cacheable("on", "GET", {}, {})
    assert not edge_cacheable("off", "GET", {}, {})
    assert not edge_cacheable("yes", "GET", {}, {})  # anything but "on" turns it off
    assert not edge_cacheable("on", "POST", {}, {})
    assert not edge_cacheable("on", "GET", {"x-nudge-offer": "t"}, {})  # the origin prices for this visitor
    assert not edge_cacheable("on", "GET", {}, {"authorization": "Basic x"})
    assert not edge_cacheable("on", "GET", {}, {"range": ""})  # present, even empty


@pytest.mark.parametrize(("name", "goes_on"), [
    ("accept", True),
    ("cookie", True),  # the caller strips nudge's own cookies from it
    ("X-Nudge-User", False),
    ("x_nudge_order", False),  # PHP and Django read underscores as hyphens
    ("Host", False),
    ("content-length", False),
    ("Transfer-Encoding", False),
    ("upgrade", False),
])
def test_browser_copies_of_nudge_headers_and_hop_headers_never_reach_the_origin(name: str, goes_on: bool) -> None:
    assert forwarded(name) is goes_on


def test_cache_limits_and_encodings() -> None:
    assert not too_big_to_keep(None) and not too_big_to_keep("abc") and not too_big_to_keep(str(MAX_CACHED_BODY))
    assert too_big_to_keep(str(MAX_CACHED_BODY + 1))
    assert all(decoded_by_runtime(e) for e in (None, "", "identity", "gzip", " BR "))
    assert not decoded_by_runtime("zstd") and not decoded_by_runtime("deflate")
    assert needs_probe("gzip") and needs_probe("br") and not needs_probe("") and not needs_probe(None)
