"""The one HTTP origin the runtime tests and the benchmarks put behind the edge: a threaded stdlib
server whose routes cover what real shops send (slow pages, errors, gzip, redirects, several
cookies), what broken ones send (under /fault/: error statuses, a hang, a connection cut mid-body,
undecodable and huge bodies, awkward HTML, other charsets), and, for the benchmarks, shop pages of a
chosen size. Every request's headers are recorded (`seen`).

    python -m nudge_tools.origin --port 8790 [--sized]

Configured by one switch: with `sized` (the benchmarks), every path outside /fault/ is a shop page
(the path only decides how nudge classifies it):
  ?kb=N        about N KB (default 20): header, product tiles with marked prices, a slot, footer
  ?jsonld=1    adds a schema.org Product script and og:/product: meta tags to the head
  ?facts=meta  adds the meta tags only, some spelled as CMSs do (" OG:Type ")
  ?pause=S     sends everything up to and including </head>, waits S seconds, then the rest
Without it (the tests), the scripted routes below answer; any other path is a small page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from nudge_tools.origin_pages import (
    ASSET,
    CORRUPT_GZIP,
    GZIP_PAGE,
    HTML,
    OWN_COOKIES,
    PAGE,
    PAGES,
    PLAIN_PRICES_PAGE,
    PRODUCT_PAGE,
    SHOP_PAGE,
    UNKNOWN_ENCODED,
    big_page,
    brotli_page,
    sized_page,
)
from nudge_tools.processes import serving

# path -> the handler method that answers it (prefix routes are in _scripted and _fault)
_SCRIPTED = {
    "/asset.bin": "_asset", "/error": "_error", "/gzip": "_gzip", "/redirect": "_redirect",
    "/cookies": "_cookies", "/headers": "_headers", "/login": "_login", "/checkout/thank-you": "_thank_you",
    "/no-transform": "_no_transform", "/download": "_download", "/bare": "_bare",
    "/slow-stream": "_slow_stream", "/to": "_to",
}
_FAULTS = {
    "/hang": "_hang", "/cut": "_cut", "/cut-chunked": "_cut_chunked", "/gzip": "_fault_gzip",
    "/bad-gzip": "_bad_gzip", "/br": "_br", "/unknown-encoding": "_unknown_encoding", "/big": "_big",
    "/cookies": "_fault_cookies", "/redirect": "_fault_redirect",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    seen: list[dict[str, str]]  # set per server (serving_origin)
    sized: bool = False
    query: dict[str, list[str]]
    request_headers: dict[str, str]

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def arg(self, name: str, default: str) -> str:
        return (self.query.get(name) or [default])[0]

    def _send(self, status: int, body: bytes, ctype: str = HTML,
              headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers or []:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _start_chunked(self, status: int = 200, ctype: str = HTML,
                       headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers or []:
            self.send_header(k, v)
        self.end_headers()

    def _own_address(self) -> str:
        address = self.server.server_address
        assert isinstance(address, tuple)  # an IP server: (host, port)
        return f"http://{address[0]}:{address[1]}"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        self.request_headers = {":path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
        type(self).seen.append(self.request_headers)
        if parts.path.startswith("/fault/"):
            self._fault(parts.path.removeprefix("/fault"))
        elif self.sized:
            self._sized()
        else:
            self._scripted(parts.path)

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

    # -- the benchmarks' shop pages ---------------------------------------------------------------

    def _sized(self) -> None:
        kb = max(1, min(int(self.arg("kb", "20")), 16 * 1024))
        head, rest = sized_page(kb, bool(self.query.get("jsonld")), self.arg("facts", ""))
        pause = float(self.arg("pause", "0"))
        if not pause:
            self._send(200, head + rest, headers=[("Cache-Control", "no-store")])
            return
        self._start_chunked(headers=[("Cache-Control", "no-store")])
        self._chunk(head)
        time.sleep(pause)
        self._chunk(rest)
        self.wfile.write(b"0\r\n\r\n")

    # -- the scripted routes (?delay_ms=N first waits N ms) ---------------------------------------

    def _scripted(self, path: str) -> None:
        delay = int(self.arg("delay_ms", "0")) / 1000
        if delay:
            time.sleep(delay)
        if path.startswith("/collections/"):
            self._collection()
        elif path.startswith("/products/"):
            self._send(200, PRODUCT_PAGE.encode())
        elif path in _SCRIPTED:
            getattr(self, _SCRIPTED[path])()
        else:
            self._send(200, PAGE.encode())

    def _collection(self) -> None:
        # ?csp=POLICY sends it; ?applied=1: offer already priced in; ?cache=VALUE: Cache-Control;
        # ?cookie=1: a Set-Cookie of its own; ?vary=VALUE: a Vary (?vary=User-Agent);
        # ?markup=plain: prices without nudge's markup
        extra = [("Content-Security-Policy", v) for v in self.query.get("csp", [])]
        extra += [("X-Nudge-Offer-Applied", "1")] if self.query.get("applied") else []
        extra += [("Cache-Control", v) for v in self.query.get("cache", [])]
        extra += [("Set-Cookie", "shop_session=abc; Path=/")] if self.query.get("cookie") else []
        extra += [("Vary", v) for v in self.query.get("vary", [])]
        page = PLAIN_PRICES_PAGE if self.arg("markup", "") == "plain" else SHOP_PAGE
        self._send(200, page.encode(), headers=extra)

    def _asset(self) -> None:
        self._send(200, ASSET, "application/octet-stream", [("ETag", '"abc"')])

    def _error(self) -> None:
        self._send(500, b"<h1>origin broke</h1>", headers=[("X-Origin", "yes")])

    def _gzip(self) -> None:
        self._send(200, GZIP_PAGE, headers=[("Content-Encoding", "gzip")])

    def _redirect(self) -> None:
        host = self.headers.get("Host", "")
        self._send(302, b"", headers=[("Location", f"http://{host}/page?from=redirect")])

    def _to(self) -> None:  # ?loc=PATH: to PATH on the origin's own address (a `?next=` checked for "/" only)
        self._send(302, b"", headers=[("Location", f"http://{self.headers['Host']}{self.arg('loc', '/')}")])

    def _cookies(self) -> None:
        self._send(200, PAGE.encode(), headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/; HttpOnly")])

    def _headers(self) -> None:  # the request's own headers, as JSON
        self._send(200, json.dumps(self.request_headers).encode(), "application/json")

    def _login(self) -> None:  # the shop names the logged-in customer for the edge
        self._send(200, PAGE.encode(), headers=[("X-Nudge-User", self.arg("user", ""))])

    def _thank_you(self) -> None:  # the shop confirms an order for the edge (?order=ID&value=V)
        order, value = self.arg("order", ""), self.arg("value", "0")
        self._send(200, PAGE.encode(), headers=[("X-Nudge-Order", f"id={order}; value={value}")] if order else [])

    def _no_transform(self) -> None:
        self._send(200, PAGE.encode(), headers=[("Cache-Control", "public, no-transform")])

    def _download(self) -> None:
        self._send(200, PAGE.encode(), headers=[("Content-Disposition", "attachment; filename=page.html")])

    def _bare(self) -> None:
        self._send(200, b"<p>no head, no body</p>")

    def _slow_stream(self) -> None:
        # Headers and the first half now, the rest after ?pause= s: the edge must stream, not buffer.
        self._start_chunked()
        self._chunk(PAGE[:40].encode())
        time.sleep(float(self.arg("pause", "1")))
        self._chunk(PAGE[40:].encode())
        self.wfile.write(b"0\r\n\r\n")

    # -- /fault/...: an origin that misbehaves on purpose -----------------------------------------

    def _fault(self, path: str) -> None:
        if path.startswith("/status/"):
            code = int(path.removeprefix("/status/"))
            self._send(code, f"<h1>origin says {code}</h1>\n".encode(), headers=[("X-Origin", "yes")])
        elif path.startswith("/page/"):
            body, ctype = PAGES[path.removeprefix("/page/")]
            self._send(200, body, ctype)
        elif path in _FAULTS:
            getattr(self, _FAULTS[path])()
        else:
            self._send(404, b"<h1>no such fault</h1>")

    def _cache_header(self) -> list[tuple[str, str]]:
        """?cache=VALUE (public,max-age=60, say): a Cache-Control too."""
        return [("Cache-Control", self.arg("cache", ""))] if "cache" in self.query else []

    def _hang(self) -> None:  # nothing at all for ?seconds=: no status line, no headers
        time.sleep(float(self.arg("seconds", "5")))
        self._send(200, PAGE.encode())

    def _cut(self) -> None:  # promises the whole page, sends part of it (?at=) and hangs up (?pause= s later)
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", self.arg("type", HTML))
        self.send_header("Content-Length", str(len(body)))
        for k, v in self._cache_header():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body[: int(self.arg("at", "60"))])
        self.wfile.flush()
        time.sleep(float(self.arg("pause", "0")))
        self.close_connection = True

    def _cut_chunked(self) -> None:  # the same with chunked encoding: no last chunk
        self._start_chunked(ctype=self.arg("type", HTML), headers=self._cache_header())
        self._chunk(PAGE.encode()[: int(self.arg("at", "60"))])
        time.sleep(float(self.arg("pause", "0")))
        self.close_connection = True

    def _fault_gzip(self) -> None:
        self._send(200, GZIP_PAGE, self.arg("type", HTML),
                   [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"), *self._cache_header()])

    def _bad_gzip(self) -> None:  # labelled gzip, not decodable (?type=, ?cache=)
        self._send(200, CORRUPT_GZIP, self.arg("type", HTML), [("Content-Encoding", "gzip"), *self._cache_header()])

    def _br(self) -> None:
        self._send(200, brotli_page(), self.arg("type", HTML), [("Content-Encoding", "br")])

    def _unknown_encoding(self) -> None:
        self._send(200, UNKNOWN_ENCODED, HTML, [("Content-Encoding", "x-custom")])

    def _big(self) -> None:  # ?mb= MB in 64 KiB chunks, ?pause= s after the first MB, ?cut=MB: hang up there
        body = big_page(int(self.arg("mb", "10")))
        pause = float(self.arg("pause", "0"))
        cut = int(float(self.arg("cut", "0")) * 1024 * 1024)
        self._start_chunked()
        step = 64 * 1024
        for offset in range(0, len(body), step):
            if offset == 1024 * 1024 and pause:
                time.sleep(pause)
            if cut and offset >= cut:  # no last chunk
                self.close_connection = True
                return
            self._chunk(body[offset:offset + step])
        self.wfile.write(b"0\r\n\r\n")

    def _fault_cookies(self) -> None:  # ?type=, ?status= (a redirect to itself), ?user= (names its customer)
        status = int(self.arg("status", "200"))
        extra = [("Set-Cookie", c) for c in OWN_COOKIES]
        extra += [("Location", f"{self._own_address()}/page")] if 300 <= status < 400 else []
        extra += [("X-Nudge-User", self.arg("user", ""))] if "user" in self.query else []
        self._send(status, PAGE.encode() if status == 200 else b"", self.arg("type", HTML), extra)

    def _fault_redirect(self) -> None:  # ?status=301&to=LOCATION ("ORIGIN" in it: this origin's address)
        location = self.arg("to", "/").replace("ORIGIN", self._own_address())
        self._send(int(self.arg("status", "302")), b"", headers=[("Location", location)])


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging route must not hold up shutdown
    request_queue_size = 128  # the benchmarks' bursts

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]
        # else: the edge hung up on a route that hangs or cuts (the fault under test)


def _server(port: int, sized: bool) -> tuple[_Server, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Handler,), {"seen": seen, "sized": sized})
    return _Server(("127.0.0.1", port), handler), seen


@contextmanager
def serving_origin(*, sized: bool = False) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(base URL, request headers seen) of the origin running in a thread of this process; stopped
    when the block ends. `sized`: the benchmarks' shop pages (module docstring)."""
    server, seen = _server(0, sized)
    with serving(server) as url:
        yield url, seen


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--port", type=int, default=8790)
    ap.add_argument("--sized", action="store_true", help="every path is a shop page of ?kb= KB")
    args = ap.parse_args()
    server, _ = _server(args.port, args.sized)
    print(f"origin on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
