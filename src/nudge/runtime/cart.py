"""The shop's cart as the edge sees it: a request to one of the shop's cart routes, or the shop's
X-Nudge-Cart header, into the session (visitor.cart_truth decides what they mean); with
`[cart] truth_url`, the shop's own cart JSON read after an accepted change.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any
from urllib.parse import SplitResult

import js

from nudge.engine import Engine
from nudge.runtime.bindings import WorkersError, js_errors, opts
from nudge.runtime.http import new_headers, read_body
from nudge.runtime.isolate import memory
from nudge.visitor.cart_routes import RouteMatch
from nudge.visitor.cart_truth import MAX_TRUTH_BODY, apply_cart_truth, cart_seen, cookie_for_truth, parse_cart_json
from nudge.visitor.cookies import without_our_cookies
from nudge.visitor.session import Session

__all__ = ["CART_TRUTH_BUDGET", "cart_followed"]

log = logging.getLogger("nudge")

CART_TRUTH_BUDGET = 2.0  # seconds for the shop's cart JSON ([cart] truth_url) after a cart change


async def cart_followed(app: Engine, js_req: Any, parts: SplitResult, origin: str, session: Session,
                        action: RouteMatch | None, cart_body: Any, cart_header: str | None, origin_resp: Any,
                        now: int) -> bool:
    """The cart change and the shop's figures into the session (cart_truth.cart_seen); with
    `[cart] truth_url`, the shop's cart JSON read after an accepted change. True when it changed."""
    body = await cart_body if cart_body is not None else None
    seen = cart_seen(session, app.cart, action, body, js_req.headers.get("content-type"), int(origin_resp.status),
                     cart_header, now, partial(app.item_price, memory.learned))
    truth = None
    if seen.read_truth is not None:
        shop_cart = await _shop_cart(js_req, parts, origin, seen.read_truth.url, origin_resp)
        truth = parse_cart_json(seen.read_truth, shop_cart)
    if truth is not None:
        apply_cart_truth(session, truth, now)
    return seen.touched or truth is not None


async def _shop_cart(js_req: Any, parts: SplitResult, origin: str, url: str, changed_by: Any) -> bytes | None:
    """The shop's cart JSON (`[cart] truth_url`), read as the shopper: their cookies (not nudge's)
    with the ones the cart change just set (a new cart cookie). None when it fails or is slow."""
    set_cookies = changed_by.headers.getSetCookie().to_py() if hasattr(changed_by.headers, "getSetCookie") else []
    headers = new_headers()
    headers.set("accept", "application/json")
    headers.set("x-forwarded-host", parts.netloc)
    headers.set("x-forwarded-proto", parts.scheme)
    cookie = cookie_for_truth(without_our_cookies(js_req.headers.get("cookie")), [str(c) for c in set_cookies])
    if cookie:
        headers.set("cookie", cookie)
    try:
        with js_errors():
            resp = await asyncio.wait_for(js.fetch(origin + url, opts(method="GET", headers=headers,
                                                                      redirect="manual")), CART_TRUTH_BUDGET)
            if int(resp.status) != 200:
                log.warning("nudge: the shop's cart %s answered %s", url, resp.status)
                return None
            return await asyncio.wait_for(read_body(resp, MAX_TRUTH_BODY), CART_TRUTH_BUDGET)
    except (TimeoutError, WorkersError) as exc:
        log.warning("nudge: reading the shop's cart %s failed: %r", url, exc)
        return None
