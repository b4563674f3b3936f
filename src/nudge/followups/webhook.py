"""The follow-up webhook: its body (cart lines, suggestions, a single-use offer code), the signature
receivers verify (`X-Nudge-Signature`), what a delivery attempt's status means, and the backoff
between attempts. Plain Python: the edge does the POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

from nudge.followups.messages import FollowUp, IssuedCode
from nudge.rules.model import Rule
from nudge.rules.product_feed import CatalogProduct, ShopCatalog

SIGNATURE_HEADER = "X-Nudge-Signature"
SIGNATURE_TOLERANCE = 5 * 60  # receivers reject signatures older than this (replays)
WEBHOOK_TIMEOUT = 10  # seconds
MAX_BACKOFF = 60 * 60


def _product_json(p: CatalogProduct, site: str) -> dict[str, Any]:
    image = p.image if p.image is None or p.image.startswith("https://") else site + p.image
    return {"id": p.sku, "name": p.name, "url": site + p.url, "price": p.price, "image": image}


def cart_items(catalog: ShopCatalog, message: FollowUp) -> list[dict[str, Any]]:
    """The cart lines with what the shop's catalog file knows about them (names, links, prices)."""
    if message.action != "abandoned_cart":
        return []
    by_sku = {p.sku: p for p in catalog.products}
    out = []
    for sku, quantity in message.items:
        product = by_sku.get(sku) or catalog.get(sku)
        out.append({**(_product_json(product, message.site) if product else {"id": sku}), "quantity": quantity})
    return out


def suggestions(catalog: ShopCatalog, message: FollowUp, limit: int) -> list[dict[str, Any]]:
    """Products to suggest: what goes with the cart (then the cart's categories), or, for a browser,
    the rest of the category they looked at (then what goes with what they viewed). Never anything
    in the cart or already viewed."""
    by_sku = {p.sku: p for p in catalog.products}
    anchors = [p for p in ((by_sku.get(sku) or catalog.get(sku)) for sku, _ in message.items) if p]
    exclude = {p.id for p in anchors} | {sku for sku, _ in message.items}
    goes_with = [x for x in (catalog.get(a) for p in anchors for a in p.accessories) if x is not None]
    same_category = [p for c in dict.fromkeys([message.category] if message.category else [p.category for p in anchors])
                     for p in catalog.in_category(c)]
    pool = goes_with + same_category if message.action == "abandoned_cart" else same_category + goes_with
    chosen: list[dict[str, Any]] = []
    for p in pool:
        if p.id in exclude or len(chosen) >= limit:
            continue
        exclude.add(p.id)
        chosen.append(_product_json(p, message.site))
    return chosen


def offer_code(secret: bytes, prefix: str, event: str) -> str:
    """The follow-up's single-use code, derived from its event (a retry mints the same code)."""
    mac = hmac.new(secret, b"nudge/followup-code/" + event.encode(), hashlib.sha256).digest()
    return f"{prefix}-{base64.b32encode(mac[:10]).decode().rstrip('=')[:10]}"


def issue_code(secret: bytes, rule: Rule, message: FollowUp, now: int) -> IssuedCode | None:
    """The rule's offer as a single-use code valid `valid_hours` from now (None without [offer])."""
    offer = rule.offer
    if offer is None:
        return None
    return IssuedCode(offer_code(secret, offer.code, message.event), rule.id, message.visitor, offer.percent,
                      offer.amount, offer.category, offer.redirect, now + offer.valid_hours * 3600)


def webhook_body(message: FollowUp, user_id: str, cart_items: list[dict[str, Any]],
            recommendations: list[dict[str, Any]], code: IssuedCode | None, now: int) -> dict[str, Any]:
    """The webhook body (the seed's shape plus an event id for idempotency and links back)."""
    body: dict[str, Any] = {
        "eventId": message.event,
        "userId": user_id,
        "action": message.action,
        "rule": message.rule,
        "sentAt": now,
        "cartItems": cart_items,
        "recommendations": recommendations,
        "offer": None,
    }
    if message.action == "abandoned_browse":
        body["category"] = message.category
    if code is not None:
        body["offer"] = {"code": code.code, "percent": code.percent, "amount": code.amount,
                         "category": code.category, "expires": code.expires,
                         "url": f"{message.site}/_nudge/redeem?code={code.code}"}
    return body


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>` (the scheme Stripe and others use)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, body: bytes, header: str | None, now: int, tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """For receivers: the signature matches this body and is recent (so a captured request cannot
    be replayed later)."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


def webhook_url_problem(url: str) -> str | None:
    """Why a NUDGE_WEBHOOK_URL cannot be used (None when it can): https only, except plain http to
    this machine for local development."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"NUDGE_WEBHOOK_URL {url!r} is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in ("localhost", "127.0.0.1", "::1"):
        return None
    return f"NUDGE_WEBHOOK_URL must be an https:// URL (http:// only to localhost), not {url!r}"


def delivery_outcome(status: int | None) -> str:
    """What a delivery attempt means: "delivered" (2xx), "retry" (5xx, 408, 429, timeout or network
    failure: `status` None) or "dead_letter" (any other 4xx or odd status: retrying cannot help)."""
    if status is None or status >= 500 or status in (408, 429):
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    return "dead_letter"


def backoff(attempts: int) -> int:
    """Seconds before the next attempt: 30 s, 1, 2, 4 ... minutes, at most an hour."""
    return int(min(30 * 2 ** max(0, attempts - 1), MAX_BACKOFF))
