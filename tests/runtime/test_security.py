"""Security at the boundary, through the Worker in Pyodide: no secret means no personalization
(the origin's responses untouched, one log line), secrets never reach the logs or analytics, origin
redirects never become open redirects, oversized cookies and hostile beacons stay harmless."""

from __future__ import annotations

import http.client
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pytest

from nudge_tools.processes import events
from tests.runtime.test_worker import Edge, edge_in_front_of_origin

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """The edge the tests share that need no setting of their own (each uses its own visitor)."""
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv")) as e:
        yield e

# Headers the local runtime's HTTP server sets for any response, whoever made it.
_TRANSPORT = {"date", "connection", "keep-alive", "transfer-encoding", "content-length"}


def _headers(resp: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in resp.headers.multi_items() if k.lower() not in _TRANSPORT)


@pytest.mark.parametrize("secret", ["", " , "])
def test_without_a_secret_every_response_is_the_origins_and_one_line_says_why(tmp_path: Path, secret: str) -> None:
    # identity: the runtime would gzip for a client that accepts it (as Cloudflare does), a transport
    # matter like Content-Length; asked for the bytes as they are, nothing may differ
    with edge_in_front_of_origin(tmp_path, "--var", f"NUDGE_SECRET:{secret}") as e, \
            httpx.Client(base_url=e.url, timeout=30, headers={"accept-encoding": "identity"}) as c, \
            httpx.Client(base_url=e.origin, timeout=30, headers={"accept-encoding": "identity"}) as direct:
        for path in ("/page", "/collections/sneakers", "/products/trail-shoe", "/cookies", "/asset.bin", "/error",
                     "/collections/sneakers/products/aero-runner?utm_source=x"):
            via, origin = c.get(path, headers={"cookie": "nudge=forged.value; shop=1"}), direct.get(path)
            assert (via.status_code, via.content) == (origin.status_code, origin.content), path
            assert _headers(via) == _headers(origin), path  # no cookie, no Vary, no Server-Timing, no cache change
        assert c.post("/_nudge/beacon", json={}).status_code == 503
        e.process.wait_for_output("NUDGE_SECRET is not set", timeout=30)  # the log line is relayed later
    # read once the runtime has stopped: all its output is in
    lines = [line for line in e.process.output().splitlines() if "NUDGE_SECRET is not set" in line]
    assert len(lines) == 1, lines  # said once for the isolate, not once per request
    assert "personalization is off" in lines[0] and "passes through" in lines[0]


SECRET = "s3cret-" + secrets.token_hex(12)
QA_TOKEN = "qa-" + secrets.token_hex(12)


def test_secrets_never_reach_logs_analytics_or_responses(tmp_path: Path) -> None:
    """A journey through every endpoint, the error paths included; then neither NUDGE_SECRET nor
    NUDGE_EXPLAIN_TOKEN is in the runtime's stdout/stderr (the analytics points the Worker echoes
    there included), its persisted state (KV, cache, queues) or any answer."""
    answers: list[httpx.Response] = []
    with edge_in_front_of_origin(tmp_path, "--var", f"NUDGE_SECRET:{SECRET}",
                                 "--var", f"NUDGE_EXPLAIN_TOKEN:{QA_TOKEN}") as e, e.client() as c:
        answers += [c.get("/"), c.get("/collections/sneakers"), c.get("/collections/sneakers/products/aero-runner"),
                    c.get("/products/trail-shoe"), c.get("/search?q=red+shoes&utm_source=news"), c.get("/error"),
                    c.get("/asset.bin"), c.get("/redirect")]
        answers.append(c.post("/cart/add", data={"sku": "SNK-1", "qty": "1"}))
        answers.append(c.post("/_nudge/beacon", json={"pv": 1, "dwell": 30, "events": [
            {"type": "add_to_cart", "items": [{"id": "SNK-1", "quantity": 1}], "value": 129},
            {"type": "identify", "user": "customer-42"}, {"type": "purchase", "value": 129}]}))
        for body in (b"{", b'{"pv": ' + b"1" * 5000 + b"}", b"[" * 4000 + b"]" * 4000, b"x" * 9000):
            # each on a connection of its own: after a 413 the runtime closes the connection without
            # reading the rest of the body, and a keep-alive client would send its next request into that
            answers.append(c.post("/_nudge/beacon", content=body,
                                  headers={"content-type": "application/json", "connection": "close"}))
        answers += [c.get("/_nudge/redeem?t=forged.token"), c.get("/_nudge/preview?t=forged.token"),
                    c.get(f"/_nudge/explain?token={QA_TOKEN}x&path=/"),
                    c.get(f"/_nudge/explain?token={QA_TOKEN}&path=/"),
                    c.get(f"/_nudge/explain?token={QA_TOKEN}&path=/collections/sneakers&format=json"),
                    c.get("/_nudge/nope"), c.get("/_nudge/health"),
                    c.get("/page", headers={"cookie": "nudge=AAAA.BBBB"})]
        answers.append(c.post("/_nudge/forget"))
        # hostile beacons (a 5,000-digit number, 4,000 nested arrays, 9 KB) are answered, never a Worker error
        assert [r.status_code for r in answers if r.url.path == "/_nudge/beacon"] == [204, 400, 400, 400, 413]
        assert [r.status_code for r in answers if r.url.path == "/_nudge/explain"] == [403, 200, 200]
    # the runtime has stopped (after its pending waitUntil work): every log line and write is in
    output = e.process.output()
    # The runtime's own request traces (v3/observability) record each request's URL, as Workers Logs
    # do in production: the explain URLs this journey requested carry the QA token by design, so
    # those URLs (and only those) are taken out before looking for it there.
    stored = [p.read_bytes().replace(f"token={QA_TOKEN}".encode(), b"token=<sent in a URL>")
              if "observability" in p.parts else p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert events(e.process), "the journey recorded no analytics at all"
    for secret in (SECRET, QA_TOKEN):
        assert secret not in output
        assert not any(secret.encode() in data for data in stored)
        for r in answers:
            assert secret.encode() not in r.content and secret not in str(r.headers)


def test_huge_cookie_headers_cost_the_shopper_nothing(edge: Edge) -> None:
    """Hundreds of shop cookies beside ours, or one huge one (14-15 KB: Node's header limit is
    16 KB here, Cloudflare's 32 KB), and oversized values of ours: the page is served, ours is read
    (or, when it is not ours to read, a fresh session), and only the shop's reach the origin."""
    with edge.client() as c:
        first = c.get("/page")
        ours = "; ".join(v.split(";")[0] for v in first.headers.get_list("set-cookie") if v.startswith("nudge="))
        shop = "; ".join(f"shop{i}={'v' * 24}" for i in range(400))
        assert 13_000 < len(shop) < 15_000
        r = c.get("/headers", headers={"cookie": f"{shop}; {ours}"})
        assert r.status_code == 200 and r.json()["cookie"] == shop  # ours never goes to the origin
        page = c.get("/page", headers={"cookie": f"{shop}; {ours}"})
        assert page.status_code == 200 and 'id="nudge-config"' in page.text and '"pv":2' in page.text  # same visit
        big = c.get("/page", headers={"cookie": f"{ours}; blob={'x' * 15_000}"})  # one huge shop cookie
        assert big.status_code == 200 and '"pv":2' in big.text  # ours read beside it
        for value in ("A" * 5000, ours.removeprefix("nudge=") + "A" * 4100, "%" * 4000):
            r = c.get("/page", headers={"cookie": f"nudge={value}"})
            assert r.status_code == 200 and '"pv":1' in r.text  # a fresh session, not an error


def browser_resolves(base: str, location: str) -> tuple[str, str]:
    """(scheme, host) a browser goes to for a Location: tabs and newlines dropped, `\\` read as `/`."""
    cleaned = "".join(ch for ch in location if ch not in "\t\n\r").strip().replace("\\", "/")
    target = urlsplit(urljoin(base + "/here", cleaned))
    return target.scheme, target.netloc


@pytest.mark.parametrize("loc", ["/page?from=redirect", "?x=1", "//evil.example/x", "/\\evil.example/x",
                                 "/\t/evil.example/x"])
def test_origin_redirects_to_its_own_address_stay_on_the_shop(edge: Edge, loc: str) -> None:
    # The origin's /to?loc=PATH redirects to PATH on its own address (what a shop does with a
    # `?next=` it checked only for a leading slash).
    host = edge.url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=30)  # httpx refuses a Location with a tab in it
    conn.request("GET", "/to?" + urlencode({"loc": loc}))
    r = conn.getresponse()
    location = r.getheader("location") or ""
    conn.close()
    assert r.status == 302
    assert browser_resolves(edge.url, location) == ("http", host), location
