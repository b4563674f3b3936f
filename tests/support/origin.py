"""A scriptable origin for runtime tests and benchmarks: a threaded stdlib HTTP server whose
routes cover what real shops send (slow pages, errors, gzip, redirects, several cookies)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.processes import serving

PAGE = (
    "<!doctype html><html><head><title>t</title></head>"
    "<body><h1>Hello</h1><p>origin page</p></body></html>"
)
ASSET = bytes(range(256)) * 64  # 16 KiB of every byte value
PRODUCT_PAGE = (
    "<!doctype html><html><head><title>Trail Shoe</title>"
    '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product", '
    '"sku": "TS-1", "name": "Trail Shoe", "category": "Shoes > Sneakers", "brand": {"@type": "Brand", '
    '"name": "Summit"}, "offers": {"@type": "Offer", "price": "149.00", "priceCurrency": "USD"}}</script>'
    "</head><body><h1>Trail Shoe</h1></body></html>"
)

# A shop page with what nudge can act on: slots (one no rule targets), marked prices, microdata.
SHOP_PAGE = (
    "<!doctype html><html><head><title>Shop</title></head><body>"
    '<div data-nudge-slot="recommendations"><p>site fallback</p></div>'
    '<div data-nudge-slot="nobody-targets-this"><p>site content stays</p></div>'
    '<p class="price" data-nudge-price="129.00">$129.00</p>'
    '<span itemprop="price" content="89.00">$89.00</span>'
    '<meta itemprop="price" content="89.00">'
    '<span data-nudge-price="call us">call us</span>'
    '<span data-nudge-price="24.00" data-nudge-category="accessories">$24.00</span>'
    "</body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8",
              headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers or []:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        type(self).seen.append({":path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        delay = int((query.get("delay_ms") or ["0"])[0]) / 1000
        if delay:
            time.sleep(delay)
        path = parts.path
        if path.startswith("/collections/"):
            # ?csp=POLICY sends it; ?applied=1: offer already priced in; ?cache=VALUE: Cache-Control;
            # ?cookie=1: a Set-Cookie of its own; ?vary=VALUE: a Vary
            extra = [("Content-Security-Policy", v) for v in query.get("csp", [])]
            extra += [("X-Nudge-Offer-Applied", "1")] if query.get("applied") else []
            extra += [("Cache-Control", v) for v in query.get("cache", [])]
            extra += [("Set-Cookie", "shop_session=abc; Path=/")] if query.get("cookie") else []
            extra += [("Vary", v) for v in query.get("vary", [])]  # ?vary=User-Agent
            self._send(200, SHOP_PAGE.encode(), headers=extra)
        elif path == "/asset.bin":
            self._send(200, ASSET, "application/octet-stream", [("ETag", '"abc"')])
        elif path == "/error":
            self._send(500, b"<h1>origin broke</h1>", headers=[("X-Origin", "yes")])
        elif path == "/gzip":
            self._send(200, gzip.compress(PAGE.encode()), headers=[("Content-Encoding", "gzip")])
        elif path == "/redirect":
            host = self.headers.get("Host", "")
            self._send(302, b"", headers=[("Location", f"http://{host}/page?from=redirect")])
        elif path == "/cookies":
            self._send(200, PAGE.encode(), headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/; HttpOnly")])
        elif path == "/headers":
            self._send(200, json.dumps(type(self).seen[-1]).encode(), "application/json")
        elif path == "/login":  # the shop names the logged-in customer for the edge
            user = (query.get("user") or [""])[0]
            self._send(200, PAGE.encode(), headers=[("X-Nudge-User", user)])
        elif path == "/checkout/thank-you":  # the shop confirms an order for the edge (?order=ID&value=V)
            order, value = (query.get("order") or [""])[0], (query.get("value") or ["0"])[0]
            self._send(200, PAGE.encode(), headers=[("X-Nudge-Order", f"id={order}; value={value}")] if order else [])
        elif path.startswith("/products/"):
            self._send(200, PRODUCT_PAGE.encode())
        elif path == "/no-transform":
            self._send(200, PAGE.encode(), headers=[("Cache-Control", "public, no-transform")])
        elif path == "/download":
            self._send(200, PAGE.encode(), headers=[("Content-Disposition", "attachment; filename=page.html")])
        elif path == "/bare":
            self._send(200, b"<p>no head, no body</p>")
        elif path == "/slow-stream":
            # Headers and the first half now, the rest later: the edge must stream, not buffer.
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (PAGE[:40].encode(), None, PAGE[40:].encode()):
                if chunk is None:
                    time.sleep(float((query.get("pause") or ["1"])[0]))
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, PAGE.encode())

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """Echoes how a request body arrived (as JSON): its framing headers (a WSGI server reads no
        body without Content-Length), its length and its SHA-256."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append({":path": self.path, **headers})
        length = headers.get("content-length")
        body = self.rfile.read(int(length)) if length else self._chunked()
        report = {"content-length": length, "transfer-encoding": headers.get("transfer-encoding"),
                  "content-type": headers.get("content-type"), "length": len(body),
                  "sha256": hashlib.sha256(body).hexdigest()}
        self._send(200, json.dumps(report).encode(), "application/json")

    def _chunked(self) -> bytes:
        """A chunked request body, de-chunked (the stdlib server leaves that to the handler)."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return b""
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, then the last CRLF
            pass
        return b"".join(chunks)


@contextmanager
def serving_origin() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(base URL, request headers seen) of a running origin; stopped when the block ends."""
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url, seen
