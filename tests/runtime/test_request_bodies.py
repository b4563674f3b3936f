"""What the origin receives through nudge on workerd: request bodies with their Content-Length
(WSGI servers read none without it), the proxy headers, and [site] exclude paths untouched."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from nudge_tools.origin import PAGE
from tests.runtime.test_worker import Edge, edge_in_front_of_origin, nudge_cookies

pytestmark = pytest.mark.runtime
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv-bodies")) as e:
        yield e


def arrived(resp: httpx.Response, sent: bytes) -> dict[str, object]:
    """The origin's account of the body, checked to be the bytes sent."""
    assert resp.status_code == 200, resp.text
    report: dict[str, object] = resp.json()
    assert report["length"] == len(sent) and report["sha256"] == hashlib.sha256(sent).hexdigest()
    return report


@pytest.mark.parametrize("path", [
    "/basket/add/1/",
    "/cart/add",  # the cart endpoint in rules/site.toml: nudge reads a copy of the body too
])
def test_a_form_arrives_with_its_length(edge: Edge, path: str) -> None:
    form = b"csrfmiddlewaretoken=abc&sku=TS-1&qty=2"
    with edge.client() as c:
        r = c.post(path, content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    report = arrived(r, form)
    assert report["content-length"] == str(len(form)) and report["transfer-encoding"] is None


def test_a_multipart_form_arrives_byte_for_byte(edge: Edge) -> None:
    upload = bytes(range(256)) * 16  # every byte value, CRLFs and boundary-like dashes included
    with edge.client() as c:
        request = c.build_request("POST", "/upload", data={"quantity": "1"},
                                  files={"photo": ("a.bin", upload, "application/octet-stream")})
        sent = request.read()
        r = c.send(request)
    report = arrived(r, sent)
    assert report["content-length"] == str(len(sent))
    assert report["content-type"] == r.request.headers["content-type"]  # the boundary with it


def test_a_large_upload_streams_with_the_length_the_client_gave(edge: Edge) -> None:
    upload = bytes(range(256)) * (3 * MIB // 256)  # over the 1 MiB that is buffered
    with edge.client() as c:
        r = c.post("/upload", content=upload, headers={"content-type": "application/octet-stream"})
    assert arrived(r, upload)["content-length"] == str(3 * MIB)


@pytest.mark.parametrize("size", [
    1000,  # a chunked body under the bound is read whole and gets its length
    2 * MIB,  # over it, with no length known to anyone: streamed on chunked, intact
])
def test_a_chunked_upload_arrives_whole(edge: Edge, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with edge.client() as c:  # a generator: httpx sends it chunked, without Content-Length
        r = c.post("/upload", content=iter([body[: size // 2], body[size // 2:]]))
    report = arrived(r, body)
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert (report["content-length"] == str(size)) is (size <= MIB)


def test_the_origin_is_told_the_host_scheme_and_client(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/headers", headers={"x-forwarded-for": "203.0.113.7"})
    seen = next(h for h in reversed(edge.seen) if h[":path"] == "/headers")
    assert seen["x-forwarded-host"] == urlsplit(edge.url).netloc
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"  # the chain as it came, then the client


@pytest.mark.parametrize("path", ["/dashboard/", "/admin/orders/", "/wp-admin/", "/%61dmin/", "/Dashboard"])
def test_excluded_paths_pass_through_untouched(edge: Edge, path: str) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        first = c.get(path)  # a new visitor
        c.cookies.set("shop", "1")
        assert len(nudge_cookies(c.get("/page"))) == 1  # a visitor with a session now
        again = c.get(path)
    assert "nudge" in again.request.headers["cookie"]
    for r in (first, again):
        assert r.status_code == 200 and r.text == PAGE  # no markup, byte for byte the origin's page
        assert nudge_cookies(r) == []  # none set, none renewed
    seen = next(h for h in reversed(edge.seen) if h.get("cookie", "").startswith("shop"))
    assert seen["cookie"] == "shop=1"  # nudge's cookie still never reaches the origin


def test_a_page_beside_an_excluded_path_is_personalized(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get("/my/dashboard/")  # globs match from the start of the path
    assert 'id="nudge-config"' in r.text and len(nudge_cookies(r)) == 1
