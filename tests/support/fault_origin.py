"""An origin that misbehaves on purpose, for the fault tests: error statuses, a hang, a connection
cut mid-body, compressed and huge bodies, awkward HTML, other charsets, several cookies, redirects.
Every other path is the plain scriptable origin (tests/support/origin.py)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.origin import PAGE, _Handler
from tests.support.processes import serving

HTML = "text/html; charset=utf-8"

# name -> (body, Content-Type) served at /fault/page/<name>
PAGES: dict[str, tuple[bytes, str]] = {
    "no-head": (b"<!doctype html><html><body><h1>No head</h1></body></html>", HTML),
    "no-body": (b"<!doctype html><html><head><title>No body</title></head></html>", HTML),
    "fragment": (b"<p>no html, no head, no body</p>", HTML),
    "unclosed": (b"<!doctype html><html><head><title>Unclosed</title><body><div><p>never closed <b>bold", HTML),
    # </head>, </body> and </html> are optional in HTML: each left out on its own
    "no-head-end": (b"<!doctype html><html><head><title>t</title><body><p>x</p></body></html>", HTML),
    "no-body-end": (b"<!doctype html><html><head><title>t</title></head><body><p>x</p></html>", HTML),
    "no-end-tags": (b"<!doctype html><title>t</title><body><p>x", HTML),
    "body-in-script-and-comment": (
        b"<!doctype html><html><head><title>t</title>"
        b'<script>var early = "</body></html>";</script></head>'
        b"<body><h1>Real body</h1>"
        b"<script>document.write('</body>'); var s = \"</body>\";</script>"
        b"<!-- </body> a comment that looks like the end -->"
        b"<textarea></body></textarea>"
        b"<p>last paragraph</p></body></html>",
        HTML,
    ),
    "windows-1252": (
        b"<!doctype html><html><head><meta charset=\"windows-1252\"><title>Caf\xe9 \x80 prices</title></head>"
        b"<body><p>\x93Quoted\x94 na\xefve cr\xe8me br\xfbl\xe9e: 12\x80</p></body></html>",
        "text/html; charset=windows-1252",
    ),
    "shift_jis": (
        "<!doctype html><html><head><meta charset=\"Shift_JIS\"><title>靴の店</title></head>"
        "<body><p>スニーカー ¥12,000 表示</p></body></html>".encode("shift_jis"),
        "text/html; charset=Shift_JIS",
    ),
    # Charsets in which "<" is not the byte 0x3C: nothing can be inserted safely.
    "utf-16": (
        "<!doctype html><html><head><title>t</title></head><body><p>wide</p></body></html>".encode("utf-16"),
        "text/html; charset=UTF-16",
    ),
    "iso-2022-jp": (
        "<!doctype html><html><head><title>靴</title></head><body><p>スニーカー</p></body></html>".encode("iso2022_jp"),
        'text/html; charset="ISO-2022-JP"',
    ),
}

# Three cookies of the shop's own, one with the comma an Expires date carries.
OWN_COOKIES = (
    "shop_session=s1; Path=/; HttpOnly",
    "shop_cart=c2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    "shop_ab=variant-b; Path=/; Max-Age=3600; SameSite=Lax",
)


def big_page(megabytes: int) -> bytes:
    """A page of about `megabytes` MB: a head, many paragraphs, then the end of the body."""
    row = b"<p>" + b"filler text of a very long category page " * 3 + b"</p>\n"
    rows = megabytes * 1024 * 1024 // len(row)
    return b"<!doctype html><html><head><title>Big</title></head><body>\n" + row * rows + b"</body></html>"


def brotli(data: bytes) -> bytes:
    """Brotli-compressed `data`, by Node's zlib (Python's stdlib has no brotli)."""
    script = "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"
    return subprocess.run(["node", "-e", script], input=data, capture_output=True, check=True).stdout


def unbrotli(data: bytes) -> bytes:
    script = "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
    return subprocess.run(["node", "-e", script], input=data, capture_output=True, check=True).stdout


GZIP_PAGE = gzip.compress(PAGE.encode())
# gzip's header, then bytes no inflater accepts: a body labelled gzip that nobody can decode
CORRUPT_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff\xfe not deflate data \x00" * 40
UNKNOWN_ENCODED = b"\x1f\x9d\x90<html> not really compressed, but labelled so \x00\xff"


class _FaultHandler(_Handler):
    brotli_page: bytes = b""

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        if not parts.path.startswith("/fault/"):
            super().do_GET()
            return
        type(self).seen.append({":path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        query = parse_qs(parts.query)
        arg = lambda name, default: (query.get(name) or [default])[0]  # noqa: E731
        path = parts.path.removeprefix("/fault")
        if path.startswith("/status/"):
            code = int(path.removeprefix("/status/"))
            self._send(code, f"<h1>origin says {code}</h1>\n".encode(), headers=[("X-Origin", "yes")])
        elif path == "/hang":  # nothing at all for a while: no status line, no headers
            time.sleep(float(arg("seconds", "5")))
            self._send(200, PAGE.encode())
        elif path == "/cut":  # promises the whole page, sends part of it (?at=) and hangs up (?pause= s later)
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", arg("type", HTML))
            self.send_header("Content-Length", str(len(body)))
            if "cache" in query:  # ?cache=public,max-age=60: a page the edge may keep
                self.send_header("Cache-Control", arg("cache", ""))
            self.end_headers()
            self.wfile.write(body[: int(arg("at", "60"))])
            self.wfile.flush()
            time.sleep(float(arg("pause", "0")))
            self.close_connection = True
        elif path == "/cut-chunked":  # the same with chunked encoding: no last chunk
            self.send_response(200)
            self.send_header("Content-Type", arg("type", HTML))
            self.send_header("Transfer-Encoding", "chunked")
            if "cache" in query:
                self.send_header("Cache-Control", arg("cache", ""))
            self.end_headers()
            self._chunk(PAGE.encode()[: int(arg("at", "60"))])
            time.sleep(float(arg("pause", "0")))
            self.close_connection = True
        elif path == "/gzip":  # ?cache=VALUE: a Cache-Control too
            extra = [("Cache-Control", arg("cache", ""))] if "cache" in query else []
            self._send(200, GZIP_PAGE, arg("type", HTML),
                       [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"), *extra])
        elif path == "/bad-gzip":  # labelled gzip, not decodable (?type=, ?cache=)
            extra = [("Cache-Control", arg("cache", ""))] if "cache" in query else []
            self._send(200, CORRUPT_GZIP, arg("type", HTML), [("Content-Encoding", "gzip"), *extra])
        elif path == "/br":
            self._send(200, type(self).brotli_page, arg("type", HTML), [("Content-Encoding", "br")])
        elif path == "/unknown-encoding":
            self._send(200, UNKNOWN_ENCODED, HTML, [("Content-Encoding", "x-custom")])
        elif path == "/big":  # streamed in 64 KiB chunks, with a pause after the first MB
            body = big_page(int(arg("mb", "10")))
            pause = float(arg("pause", "0"))
            self.send_response(200)
            self.send_header("Content-Type", HTML)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = 64 * 1024
            cut = int(float(arg("cut", "0")) * 1024 * 1024)  # ?cut=MB: hang up there, no last chunk
            for offset in range(0, len(body), step):
                if offset == 1024 * 1024 and pause:
                    time.sleep(pause)
                if cut and offset >= cut:
                    self.close_connection = True
                    return
                self._chunk(body[offset:offset + step])
            self.wfile.write(b"0\r\n\r\n")
        elif path.startswith("/page/"):
            body, ctype = PAGES[path.removeprefix("/page/")]
            self._send(200, body, ctype)
        elif path == "/cookies":  # ?type=, ?status= (a redirect to itself), ?user= (names its customer)
            host, port = self.server.server_address[:2]
            status = int(arg("status", "200"))
            extra = [("Set-Cookie", c) for c in OWN_COOKIES]
            extra += [("Location", f"http://{host}:{port}/page")] if 300 <= status < 400 else []
            extra += [("X-Nudge-User", arg("user", ""))] if "user" in query else []
            self._send(status, PAGE.encode() if status == 200 else b"", arg("type", HTML), extra)
        elif path == "/redirect":  # ?status=301&to=LOCATION ("ORIGIN" in it: this origin's address)
            host, port = self.server.server_address[:2]
            location = arg("to", "/").replace("ORIGIN", f"http://{host}:{port}")
            self._send(int(arg("status", "302")), b"", headers=[("Location", location)])
        else:
            self._send(404, b"<h1>no such fault</h1>")

    do_HEAD = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging route must not hold up shutdown

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]
        # else: the edge hung up on a route that hangs or cuts (the fault under test)


@contextmanager
def serving_fault_origin() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(base URL, request headers seen) of a running fault origin; stopped when the block ends."""
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_FaultHandler,), {"seen": seen, "brotli_page": brotli(PAGE.encode())})
    with serving(_Server(("127.0.0.1", 0), handler)) as url:
        yield url, seen
