"""The origin's response: fetched (a body the runtime cannot decode fails here, not mid-page),
or taken from the edge cache when the origin allowed the page to be shared, and kept there only
once all of it has arrived. Which pages may be shared is guard.shareable_page's decision; a page
the origin lately refused to share is not looked up at all (delivery/unshared_pages.py). Then
what the answer is to nudge: a page it may rewrite, a redirect to bring back to our host, and the
shop's own word about the visitor (X-Nudge-User/-Order/-Cart), taken off before the browser sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import SplitResult

import js

from nudge.delivery.page_policy import PAGE_HEADERS, decoded_by_runtime, is_page, needs_probe, too_big_to_keep
from nudge.guard import shareable_page, shared_by_policy
from nudge.runtime.bindings import WorkersError, absent, cache_match, cache_put, edge_cache, js_errors, started
from nudge.runtime.http import headers_of, new_headers, rebuilt, respond, site, str_or_none, with_headers
from nudge.runtime.isolate import unshared_pages
from nudge.visitor.cart_truth import CART_HEADER
from nudge.visitor.identity import IDENTITY_HEADER
from nudge.visitor.pages import own_location
from nudge.visitor.purchases import ORDER_HEADER

__all__ = ["fetch_origin", "is_page_answer", "origin_under_way", "relocated", "shops_word"]

log = logging.getLogger("nudge")


def origin_under_way(request: Any, cache_key: str | None, ctx: Any) -> Any:
    """The origin's response as a task to await (fetch_origin). When no edge-cache lookup has to
    come first, the request leaves now, not when the event loop first runs the task: what the page
    does next (its session, its KV reads) then overlaps the origin's time."""
    cache = edge_cache() if cache_key else None
    if cache_key is not None and cache is not None and unshared_pages.worth_looking_up(cache_key):
        return started(fetch_origin(request, cache_key, ctx))
    with js_errors():
        sent = js.fetch(request)  # a promise: the request is on its way
    return started(_mapped(_answer(sent, cache, cache_key, ctx)))


async def fetch_origin(request: Any, cache_key: str | None, ctx: Any) -> Any:
    """The origin's response, from the edge cache when the origin allowed it to be shared.
    Personalization is applied per request on top, so a cached page is never anyone's page.
    Raises WorkersError when the origin cannot be reached or its body cannot be decoded."""
    return await _mapped(_cached_or_fetched(request, cache_key, ctx))


async def _mapped(work: Coroutine[Any, Any, Any]) -> Any:
    """`work`, its JS exceptions raised as WorkersError."""
    with js_errors():
        return await work


async def _cached_or_fetched(request: Any, cache_key: str | None, ctx: Any) -> Any:
    cache = edge_cache() if cache_key else None
    if cache_key is not None and cache is not None and unshared_pages.worth_looking_up(cache_key):
        try:  # not a page the origin lately refused to share
            hit = await cache_match(cache, cache_key)
            if hit is not None:
                return hit
        except WorkersError as exc:
            log.warning("nudge: edge cache read failed: %s", exc)
    with js_errors():
        sent = js.fetch(request)
    return await _answer(sent, cache, cache_key, ctx)


async def _answer(sent: Any, cache: Any, cache_key: str | None, ctx: Any) -> Any:
    """The origin's response to the request `sent` (a fetch promise), kept in the edge cache when
    it may be shared; what the origin said of it is remembered (unshared_pages)."""
    with js_errors():
        resp = await sent
    if cache_key is None or cache is None:
        return await _decodable(resp)
    seen = headers_of(resp, ("cache-control", "content-type", "set-cookie", "vary"))
    unshared_pages.answered(cache_key, shared_by_policy(int(resp.status), seen))
    if shareable_page(int(resp.status), seen):
        try:
            with js_errors():
                ctx.waitUntil(_keep_whole(cache, cache_key, resp.clone()))
        except WorkersError as exc:
            log.warning("nudge: edge cache write failed: %s", exc)
    return await _decodable(resp)


async def _keep_whole(cache: Any, key: str, copy: Any) -> None:
    """The origin's page into the edge cache only once all of it has arrived: a body the origin
    broke off makes the read fail, and nothing is kept (Miniflare's cache keeps whatever a put
    received before its body errored, and would serve that later as a complete page). A body the
    runtime decoded (gzip, br) is kept decoded, without the Content-Encoding it no longer has: a
    cached copy still labelled gzip came back as gzip bytes under text/html."""
    try:
        with js_errors():
            declared = copy.headers.get("content-length")
            if too_big_to_keep(declared if isinstance(declared, str) else None):
                await copy.body.cancel()  # not kept: the shopper's copy streams on without it
                return
            body = await copy.arrayBuffer()  # rejects when the origin breaks off mid-body
            headers = new_headers(copy.headers)
            if decoded_by_runtime(str(headers.get("content-encoding") or "")):
                headers.delete("content-encoding")
            headers.delete("content-length")
            await cache_put(cache, key, respond(body, int(copy.status), headers, str(copy.statusText)))
    except WorkersError as exc:
        log.warning("nudge: edge cache write skipped: %s", exc)


async def _decodable(resp: Any) -> Any:
    """The origin's response, once the runtime could decode the start of its body (gzip, br): the
    first chunk is read from one branch of a tee before anything is answered, so a corrupt body
    raises here (the caller answers 502, with a status line) instead of becoming a 200 whose body
    breaks off at once. Other responses are returned as they are, unread. A body that goes bad
    later still breaks off mid-way, as one the origin cut does."""
    if not needs_probe(str(resp.headers.get("content-encoding") or "")) or absent(resp.body):
        return resp
    with js_errors():
        branches = resp.body.tee()
        probe, kept = branches[0], branches[1]
        reader = probe.getReader()
    try:
        with js_errors():
            await reader.read()
    except WorkersError:
        kept.cancel()  # not awaited: a tee's branch settles its cancel only when both are cancelled
        raise
    with js_errors():
        reader.cancel()  # the probe stops taking chunks; the kept branch streams on
        return rebuilt(resp, kept)


def is_page_answer(js_req: Any, resp: Any) -> bool:
    """Only a whole 200 text/html answer to a GET is rewritten (page_policy.is_page)."""
    return is_page(str(js_req.method), not absent(js_req.headers.get("range")), int(resp.status),
                   headers_of(resp, PAGE_HEADERS), not absent(resp.body))


def relocated(resp: Any, origin: str, parts: SplitResult) -> Any:
    """Rewrites an origin redirect that points at the origin's own address to our host (never to
    a Location a browser would read as another host: pages.own_location)."""
    location = resp.headers.get("location")
    moved = own_location(str(location), origin, site(parts)) if location else None
    return resp if moved is None else with_headers(resp, set_={"location": moved})


def shops_word(resp: Any) -> tuple[Any, str | None, str | None, str | None]:
    """(response, X-Nudge-User, X-Nudge-Order, X-Nudge-Cart): what the shop's origin says about
    the visitor, taken off the response so it never reaches the browser."""
    user, order, cart = (str_or_none(resp.headers.get(h)) for h in (IDENTITY_HEADER, ORDER_HEADER, CART_HEADER))
    if user is not None or order is not None or cart is not None:
        resp = with_headers(resp, delete=(IDENTITY_HEADER, ORDER_HEADER, CART_HEADER))
    return resp, user, order, cart
