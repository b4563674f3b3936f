"""Which origin responses nudge rewrites, which it may keep in the edge cache, and which request
headers reach the origin: decisions over plain values (a status, lower-case header dicts, a
method). The runtime reads the JS objects and does what these say.
"""

from __future__ import annotations

from collections.abc import Mapping

from nudge.guard import is_nudge_header

DECODED_ENCODINGS = ("", "identity", "gzip", "br")  # bodies the runtime's fetch hands over decoded
PROBED_ENCODINGS = ("gzip", "br")  # decoded by the runtime: a corrupt body shows at its first chunk
# Charsets (WHATWG labels, plus UTF-32/UTF-7) in which "<" is not the byte it is in ASCII, or in
# which bytes we insert could change the meaning of what follows: HTMLRewriter cannot parse such a
# page and nothing can be inserted into it safely, so it passes through byte-identical.
NOT_ASCII_COMPATIBLE = frozenset((
    "utf-16", "utf-16le", "utf-16be", "unicode", "unicodefeff", "unicodefffe", "csunicode", "ucs-2",
    "iso-10646-ucs-2", "utf-32", "utf-32le", "utf-32be", "utf-7", "iso-2022-jp", "csiso2022jp",
    "iso-2022-kr", "csiso2022kr", "iso-2022-cn", "iso-2022-cn-ext", "hz-gb-2312", "replacement",
))
HOP_HEADERS = ("host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade")
PAGE_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding")
MAX_CACHED_BODY = 8 * 1024 * 1024  # a shareable page this big (as declared) is not kept at the edge


def charset(content_type: str) -> str:
    """The charset parameter of a (lower-cased) Content-Type, "" when absent."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip() == "charset":
            return value.strip().strip('"\'')
    return ""


def is_page(method: str, ranged: bool, status: int, headers: Mapping[str, str], has_body: bool) -> bool:
    """Only a whole 200 text/html answer to a GET is rewritten (`headers`: the response's
    PAGE_HEADERS, lower-case names); ranges, downloads, responses the origin marks `no-transform`
    and bodies in an encoding the runtime's fetch does not decode (it decodes gzip and br, and
    encodes the answer again) pass through byte-identical."""
    content_type = headers.get("content-type", "").lower()
    return (
        method == "GET"
        and status == 200
        and content_type.startswith("text/html")
        and has_body
        and "no-transform" not in headers.get("cache-control", "").lower()
        and not headers.get("content-disposition", "").lower().startswith("attachment")
        and headers.get("content-encoding", "").strip().lower() in DECODED_ENCODINGS
        and charset(content_type) not in NOT_ASCII_COMPATIBLE
        and not ranged
    )


def edge_cacheable(setting: str, method: str, offer_headers: Mapping[str, str],
                   request_headers: Mapping[str, str]) -> bool:
    """Whether the page's base HTML may come from the edge cache, keyed by the origin URL (no
    cookies in it). Not with NUDGE_EDGE_CACHE (`setting`, default "on") other than "on", for other
    methods, a visitor whose offer the origin is sent (`offer_headers`: it may price for them), nor a
    request with credentials or a range (`request_headers`: lower-case names of those present)."""
    if (setting or "on") != "on" or method != "GET" or offer_headers:
        return False
    return "range" not in request_headers and "authorization" not in request_headers


def forwarded(name: str) -> bool:
    """Whether a request header goes on to the origin: never any spelling of X-Nudge-* (only the
    edge sets those) nor a hop-by-hop header."""
    return not is_nudge_header(name) and name.lower() not in HOP_HEADERS


def too_big_to_keep(declared_length: str | None) -> bool:
    """A shareable page whose declared Content-Length exceeds MAX_CACHED_BODY is not cached."""
    return declared_length is not None and declared_length.isdigit() and int(declared_length) > MAX_CACHED_BODY


def decoded_by_runtime(content_encoding: str | None) -> bool:
    """Whether the runtime's fetch hands this body over decoded (a copy kept in the cache is then
    stored without the Content-Encoding it no longer has)."""
    return (content_encoding or "").strip().lower() in DECODED_ENCODINGS


def needs_probe(content_encoding: str | None) -> bool:
    """Whether the body is one the runtime decodes, whose first chunk is read before answering."""
    return (content_encoding or "").strip().lower() in PROBED_ENCODINGS
