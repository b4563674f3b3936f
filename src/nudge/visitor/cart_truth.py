"""The shop's own word on the cart, which wins over what nudge inferred from requests and events.

Two channels, both optional:

    X-Nudge-Cart: items=<count>; value=<amount in the shop's currency, e.g. 129.00>

on any response (the edge strips it before the browser, as X-Nudge-Order), and `[cart] truth_url`
(the shop's cart as JSON, e.g. Shopify's `/cart.js`), which the edge reads after a cart change
with the shopper's cookies. `value` may be left out (the cart value then stays as inferred).

Reconciling a count with the per-item map: the map keeps the lines nudge can name (for
recommendations and follow-ups) and is made to agree with the shop's count. Items the shop has
beyond the named ones go to one unnamed line (`UNNAMED_LINE`); fewer items than named are taken
off the oldest lines first; 0 empties the cart. So `cart.items` is always the shop's count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nudge.visitor.cart import apply_cart_change, read_cart_request, replace_cart_lines
from nudge.visitor.cart_routes import CartEndpoints, CartTruthSource, RouteMatch
from nudge.visitor.purchases import shop_header_fields
from nudge.visitor.session import (
    CART_FROM_SHOP,
    CART_SOURCES,
    MAX_CART_LINES,
    MAX_MONEY,
    UNNAMED_LINE,
    Session,
)

CART_HEADER = "x-nudge-cart"
MAX_TRUTH_ITEMS = 9999
MAX_TRUTH_BODY = 256 * 1024  # a cart JSON with many lines and their descriptions


@dataclass(frozen=True)
class CartTruth:
    items: int
    value: float | None  # in the shop's currency; None: not given


def parse_cart_header(value: str | None) -> CartTruth | None:
    """The cart an `X-Nudge-Cart` header states; None when absent or malformed (a shop's mistake
    changes nothing). Unknown fields are ignored."""
    if not value or len(value) > 256:
        return None
    fields = shop_header_fields(value)
    return _truth(fields.get("items"), fields.get("value"), 1.0)


def parse_cart_json(source: CartTruthSource, body: bytes | None) -> CartTruth | None:
    """The figures in the shop's cart JSON at `source`'s paths; None when they are not there."""
    if body is None or len(body) > MAX_TRUTH_BODY:
        return None
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    value = _at(data, source.value) if source.value else None
    if source.value and value is None:
        return None
    return _truth(_at(data, source.items), value, source.scale)


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _truth(items: Any, value: Any, scale: float) -> CartTruth | None:
    count, amount = _number(items), _number(value)
    if count is None or count != int(count) or not 0 <= count <= MAX_TRUTH_ITEMS:
        return None
    if value is not None and (amount is None or amount < 0):
        return None
    money = None if amount is None else round(amount * scale, 2)
    if money is not None and money * 100 > MAX_MONEY:
        return None
    return CartTruth(int(count), money)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and 0 < len(value) <= 16 and value.count(".") <= 1 \
            and value.replace(".", "", 1).isdigit() and value.isascii():
        return float(value)
    return None


def apply_cart_truth(session: Session, truth: CartTruth, now: int) -> bool:
    """The shop's figures into the session (see the module doc); True when the cart changed."""
    before = (dict(session.cart), session.cart_value)
    lines = {k: q for k, q in session.cart.items() if k != UNNAMED_LINE}
    excess = sum(lines.values()) - truth.items
    for item in list(lines):  # the shop has fewer: the oldest lines go first
        if excess <= 0:
            break
        taken = min(excess, lines[item])
        lines[item] -= taken
        excess -= taken
        if not lines[item]:
            del lines[item]
    unnamed = -excess if excess < 0 else 0
    while unnamed and len(lines) >= MAX_CART_LINES:  # room for the unnamed line: fold the oldest in
        unnamed += lines.pop(next(iter(lines)))
    session.cart = lines | ({UNNAMED_LINE: unnamed} if unnamed else {})
    if truth.value is not None:
        session.cart_value = int(round(truth.value * 100))
    elif not session.cart:
        session.cart_value = 0
    changed = (session.cart, session.cart_value) != before
    if changed:
        session.cart_changed = now
    session.cart_source = CART_FROM_SHOP
    session.edge_cart_seen = True
    session.last_seen = now
    return changed


@dataclass(frozen=True)
class CartSeen:
    touched: bool  # the session changed (its cookie goes with the response)
    read_truth: CartTruthSource | None  # the edge should now read the shop's cart JSON (then apply_cart_truth)


def cart_seen(session: Session, cart: CartEndpoints | None, match: RouteMatch | None, body: bytes | None,
              content_type: str | None, status: int, header: str | None, now: int,
              price_of: Callable[[str], float | None]) -> CartSeen:
    """What a response tells about the cart: a cart route's change once the shop accepted it
    (status below 400), then the shop's own figures, which win: its `X-Nudge-Cart` header, or else
    (after an accepted cart request) its cart JSON at `truth_url`, which the edge reads next."""
    touched = False
    accepted = cart is not None and match is not None and status < 400
    if accepted and cart is not None and match is not None:
        asked = read_cart_request(cart, match, body, content_type)
        if asked.replaces:  # the shop's whole basket form: its lines are the cart
            replace_cart_lines(session, asked.changes, now)
            touched = True
        else:
            for change in asked.changes:
                apply_cart_change(session, change, now, price_of(change.item))
                touched = True
    truth = parse_cart_header(header)
    if truth is not None:
        apply_cart_truth(session, truth, now)
        return CartSeen(True, None)
    return CartSeen(touched, cart.truth if accepted and cart is not None else None)


def cookie_for_truth(cookie: str | None, set_cookies: list[str]) -> str:
    """The Cookie header to read the shop's cart with: the shopper's cookies (nudge's own already
    taken out) updated by the Set-Cookie headers of the response that changed the cart (a new
    cart cookie, say). A cookie the response deletes (empty value or Max-Age=0) is left out."""
    jar: dict[str, str] = {}
    for pair in (cookie or "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name:
            jar[name] = value
    for header in set_cookies:
        first, *attributes = header.split(";")
        name, sep, value = first.strip().partition("=")
        if not sep or not name:
            continue
        gone = not value or any(a.strip().lower().replace(" ", "") in ("max-age=0", "max-age=-1")
                                for a in attributes)
        if gone:
            jar.pop(name, None)
        else:
            jar[name] = value
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def cart_explained(session: Session, routes: int, truth_url: str | None) -> dict[str, Any]:
    """For /_nudge/explain: where this visitor's cart figures come from."""
    events = ("ignored this visit: the edge has seen the cart" if session.edge_cart_seen
              else "counted (no cart route or shop cart seen at the edge yet this visit)")
    return {
        "source": CART_SOURCES.get(session.cart_source, "unknown"),
        "items": session.cart_items,
        "unnamed_items": session.cart.get(UNNAMED_LINE, 0),
        "value": round(session.cart_value / 100, 2),
        "edge_routes": routes,
        "truth_url": truth_url,
        "client_events": events,
    }
