"""Requests and responses across the border: a JS Request read into plain values (PageRequest,
headers, the body), nudge's Reply turned into a JS Response, and every JS Response and Headers
nudge builds, built here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult

import js
from pyodide.ffi import to_js

from nudge.delivery.page_policy import forwarded
from nudge.engine import PageRequest, Reply
from nudge.guard import forwarded_for, location_value
from nudge.runtime.bindings import WorkersError, absent, js_errors, opts
from nudge.visitor.attributes import RequestContext
from nudge.visitor.cookies import is_local_http, without_our_cookies

__all__ = ["MAX_BUFFERED_BODY", "MAX_DRAIN", "drain", "edge_error", "headers_of", "new_headers", "origin_request",
           "page_request", "read_body", "rebuilt", "reply_response", "respond", "secure", "site", "str_or_none",
           "with_headers"]

log = logging.getLogger("nudge")

MAX_DRAIN = 64 * 1024


# -- reading a request ----------------------------------------------------------------------------


def headers_of(message: Any, names: Sequence[str]) -> dict[str, str]:
    """The named headers (lower-case names) of a request or response that are present."""
    out = {}
    for name in names:
        value = message.headers.get(name)
        if isinstance(value, str):
            out[name] = value
    return out


def str_or_none(value: Any) -> str | None:
    """A header's value as Python has it: None when the header is absent."""
    return value if isinstance(value, str) else None


def site(parts: SplitResult) -> str:
    """scheme://host[:port] the shopper used (our own address: links in follow-ups, redirects)."""
    return f"{parts.scheme}://{parts.netloc}"


def secure(parts: SplitResult) -> bool:
    """Whether cookies get `Secure` (everywhere but plain http to this machine)."""
    return not is_local_http(parts.scheme, parts.netloc)


def page_request(js_req: Any, parts: SplitResult) -> PageRequest:
    """The plain values nudge reads from a page request (request.cf is absent outside Cloudflare)."""
    cf = getattr(js_req, "cf", None)
    country = getattr(cf, "country", None) if not absent(cf) else None
    tz = getattr(cf, "timezone", None) if not absent(cf) else None
    context = RequestContext(
        path=parts.path,
        user_agent=str(js_req.headers.get("user-agent") or "")[:512],
        country=str(country)[:2] if isinstance(country, str) else None,
        timezone=str(tz)[:64] if isinstance(tz, str) else None,
    )
    referrer = js_req.headers.get("referer")
    return PageRequest(
        context=context,
        query=parts.query,
        host=parts.hostname or "",
        referrer=str(referrer) if isinstance(referrer, str) else None,
        secure=secure(parts),
        site=site(parts),
    )


async def read_body(js_req: Any, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` (read no further than that)."""
    if absent(js_req.body):
        return b""
    length = js_req.headers.get("content-length")
    if length is not None and str(length).isdigit() and int(str(length)) > limit:
        return None
    with js_errors():
        reader = js_req.body.getReader()
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await reader.read()
            if chunk.done:
                break
            data = bytes(chunk.value.to_py())
            size += len(data)
            if size > limit:
                await reader.cancel()
                return None
            chunks.append(data)
    return b"".join(chunks)


async def drain(js_req: Any) -> None:
    """Reads and drops what is left of a request body an endpoint answered without reading (a 403,
    a 413 by its declared length), up to 64 KiB: the runtime then keeps the connection open for the
    client's next request, as it did while passThroughOnException buffered every body. A larger
    one is left: its connection closes."""
    try:
        if not absent(js_req.body) and not bool(js_req.bodyUsed):
            await read_body(js_req, MAX_DRAIN)
    except WorkersError as exc:
        log.warning("nudge: request body not drained: %s", exc)


async def origin_request(js_req: Any, target: str, parts: SplitResult, extra: Mapping[str, str],
                         signal: Any = None) -> Any:
    """The shopper's request as it goes to the origin: without nudge's cookies, any X-Nudge-* the
    browser sent or hop-by-hop headers; with X-Forwarded-Host/-Proto/-For and nudge's own `extra`;
    a body with its length (_forwarded_body)."""
    headers = js.Headers.new(js_req.headers)
    for name in list(headers.keys()):
        if not forwarded(str(name)):
            headers.delete(name)
    cookie = without_our_cookies(js_req.headers.get("cookie"))
    if cookie:
        headers.set("cookie", cookie)
    else:
        headers.delete("cookie")
    headers.set("x-forwarded-host", parts.netloc)
    headers.set("x-forwarded-proto", parts.scheme)
    client = forwarded_for(str_or_none(js_req.headers.get("x-forwarded-for")),
                           str_or_none(js_req.headers.get("cf-connecting-ip")))
    if client:
        headers.set("x-forwarded-for", client)
    for name, value in extra.items():
        headers.set(name, value)
    method = str(js_req.method)
    if method in ("GET", "HEAD") or absent(js_req.body):
        return js.Request.new(target, opts(method=method, headers=headers, redirect="manual", signal=signal))
    body = await _forwarded_body(js_req)
    return js.Request.new(
        target, opts(method=method, headers=headers, redirect="manual", signal=signal, body=body, duplex="half")
    )


# Request bodies up to 1 MiB are read whole and sent with their Content-Length: every form, login
# and cart call fits many times over, and even a hundred at once stay far below an isolate's
# 128 MB. Larger ones (uploads) are streamed, never held.
MAX_BUFFERED_BODY = 1024 * 1024


async def _forwarded_body(js_req: Any) -> Any:
    """The request body as the origin needs it: with its length. A body that reached the Worker
    without one (chunked; over HTTP/2 a client need not send it) went on chunked, and Django's own server and
    mod_wsgi read an empty body from that: every form failed its CSRF check. A body over the bound
    streams through a FixedLengthStream when the client declared its length; one with no declared
    length over the bound is the only kind still sent chunked (its length is known to nobody)."""
    length = js_req.headers.get("content-length")
    declared = int(str(length)) if isinstance(length, str) and length.isdigit() else None
    if declared is not None and declared > MAX_BUFFERED_BODY:
        return js_req.body.pipeThrough(js.FixedLengthStream.new(declared))
    if declared is not None:
        return await js_req.arrayBuffer()
    whole = await read_body(js_req.clone(), MAX_BUFFERED_BODY)  # a copy: the body stays whole if too big
    if whole is None:
        return js_req.body
    await js_req.body.cancel()  # read whole through the copy: the original's buffered half is dropped
    return to_js(whole)


# -- building responses ---------------------------------------------------------------------------


def new_headers(source: Any = None) -> Any:
    """A mutable JS Headers: empty, or a copy of `source` (a Headers)."""
    return js.Headers.new() if source is None else js.Headers.new(source)


def respond(body: Any, status: int, headers: Any, status_text: str | None = None) -> Any:
    """A JS Response (`body`: str, bytes, a stream or None; `headers`: a JS Headers)."""
    if status_text is None:
        return js.Response.new(body, opts(status=status, headers=headers))
    return js.Response.new(body, opts(status=status, statusText=status_text, headers=headers))


def rebuilt(resp: Any, body: Any = None) -> Any:
    """A response like `resp` (status, text, a mutable copy of its headers) with `body` (its own
    body when None)."""
    return js.Response.new(resp.body if body is None else body, resp)


def with_headers(resp: Any, *, set_: Mapping[str, str] | None = None, append: Sequence[tuple[str, str]] = (),
                 delete: Sequence[str] = ()) -> Any:
    """`resp` with some headers deleted, set or appended; its body streams on untouched."""
    headers = js.Headers.new(resp.headers)
    for name in delete:
        headers.delete(name)
    for name, value in (set_ or {}).items():
        headers.set(name, value)
    for name, value in append:
        headers.append(name, value)
    return respond(resp.body, resp.status, headers, resp.statusText)


def reply_response(reply: Reply) -> Any:
    """The JS Response for an answer nudge gives itself (a Location percent-encoded, so any Unicode
    path round-trips; no body for 204 and 304)."""
    headers = js.Headers.new()
    headers.set("content-type", reply.content_type)
    for name, value in reply.headers:
        headers.append(name, location_value(value) if name.lower() == "location" else value)
    body = reply.body if reply.status not in (204, 304) else None
    return respond(body, reply.status, headers)


def edge_error(status: int, text: str) -> Any:
    """The edge's own answer when the origin gave none (never cached, never personalized)."""
    headers = js.Headers.new()
    headers.set("content-type", "text/plain; charset=utf-8")
    headers.set("cache-control", "no-store")
    return respond(text, status, headers)
