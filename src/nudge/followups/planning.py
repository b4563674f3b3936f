"""Follow-ups beyond the visit: cart and browse abandonment, sent as a signed webhook.

A Worker only runs while the shopper is on the site, so a follow-up is a queue message delayed by
the rule's window. Every qualifying request (a cart change, a page view with items in the cart, a
product view with none) reschedules: it records the newest due time in KV
(``followup:<visitor>:<rule>``, a `Pending`) and enqueues a message for it. When a message comes
due, the consumer re-reads KV and sends only if that message is still the newest, nothing cancelled
it (checkout, purchase, a cart started, consent withdrawn, forget), the visitor is a known customer
and the rule's caps allow. Plain Python: the edge does the queue, KV and fetch calls.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nudge.rules.bucketing import in_rollout
from nudge.rules.model import Rule
from nudge.rules.schedule import is_active
from nudge.visitor.session import UNNAMED_LINE, Session
from nudge.rules.product_feed import CatalogProduct, ShopCatalog

ACTIONS = {"cart_abandoned": "abandoned_cart", "browse_abandoned": "abandoned_browse"}
MESSAGE_VERSION = 1
MAX_ITEMS = 20
MAX_SENT_KEPT = 20
CONTACT_TTL = 30 * 24 * 3600  # how long a customer id stays known for follow-ups after a login
SIGNATURE_HEADER = "X-Nudge-Signature"
SIGNATURE_TOLERANCE = 5 * 60  # receivers reject signatures older than this (replays)
WEBHOOK_TIMEOUT = 10  # seconds
MAX_BACKOFF = 60 * 60


class MessageError(ValueError):
    """A queue message nudge did not write (or an older layout): dropped, never retried."""


def pending_key(visitor: str, rule_id: str) -> str:
    return f"followup:{visitor}:{rule_id}"


def pending_prefix(visitor: str) -> str:
    return f"followup:{visitor}:"


def contact_key(visitor: str) -> str:
    """The logged-in customer's own id, kept only for follow-ups (erased by forget)."""
    return f"contact:{visitor}"


def code_key(code: str) -> str:
    return f"code:{code}"


def event_id(rule_id: str, visitor: str, due: int) -> str:
    """The idempotency key of one follow-up: the same rule, visitor and due time."""
    return hashlib.sha256(f"{rule_id}|{visitor}|{due}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class FollowUp:
    """A queue message: what to follow up, for whom, when."""

    event: str
    rule: str
    visitor: str
    action: str  # ACTIONS values
    due: int  # Unix seconds
    queued: int  # Unix seconds it was enqueued (a purchase after this cancels it)
    site: str  # scheme://host of the shop, for the links in the payload
    items: tuple[tuple[str, int], ...] = ()  # cart lines (sku, quantity), or recently viewed products
    category: str | None = None

    def delay(self, now: int) -> int:
        return max(0, self.due - now)

    def to_json(self) -> str:
        return json.dumps({"v": MESSAGE_VERSION, "event": self.event, "rule": self.rule, "visitor": self.visitor,
                           "action": self.action, "due": self.due, "queued": self.queued, "site": self.site,
                           "items": [list(i) for i in self.items], "category": self.category},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: object) -> FollowUp:
        """The message; raises MessageError for anything else."""
        try:
            data = json.loads(text) if isinstance(text, (str, bytes)) else None
            if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
                raise MessageError("not a nudge follow-up message")
            items = tuple((str(sku)[:48], int(qty)) for sku, qty in data["items"][:MAX_ITEMS])
            message = cls(str(data["event"]), str(data["rule"]), str(data["visitor"]), str(data["action"]),
                          int(data["due"]), int(data["queued"]), str(data["site"]), items,
                          None if data["category"] is None else str(data["category"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"malformed follow-up message: {exc}") from None
        if message.action not in ACTIONS.values() or len(message.visitor) != 16 or len(message.event) != 24:
            raise MessageError("malformed follow-up message")
        return message


@dataclass
class Pending:
    """A rule's follow-up state for one visitor in KV: the newest scheduled event, or why it was
    cancelled, and when it was sent before (caps, idempotency)."""

    event: str = ""
    due: int = 0
    cancelled: str | None = None  # "checkout", "purchase", "cart", "consent"
    sent: list[int] = field(default_factory=list)  # Unix seconds of earlier sends, most recent last
    sent_events: list[str] = field(default_factory=list)  # their event ids

    def encode(self) -> bytes:
        return json.dumps({"event": self.event, "due": self.due, "cancelled": self.cancelled,
                           "sent": self.sent[-MAX_SENT_KEPT:], "sent_events": self.sent_events[-MAX_SENT_KEPT:]},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Pending | None:
        """The stored state; None when absent or unreadable (nothing pending)."""
        if not data:
            return None
        try:
            raw = json.loads(data)
            return cls(str(raw["event"]), int(raw["due"]), raw["cancelled"] if isinstance(raw["cancelled"], str) else None,
                       [int(t) for t in raw["sent"]], [str(e) for e in raw["sent_events"]])
        except (KeyError, TypeError, ValueError):
            return None

    def in_flight(self, message: FollowUp) -> bool:
        """Whether this very event (same rule, visitor and due time) is already queued or sent: a
        cart change and the page view after it in the same second make the same event, which is
        enqueued once, not twice (two messages would each POST on every attempt)."""
        return self.event == message.event and self.cancelled is None

    def scheduled(self, message: FollowUp) -> Pending:
        return Pending(message.event, message.due, None, list(self.sent), list(self.sent_events))

    def cancel(self, reason: str) -> Pending:
        return Pending(self.event, self.due, reason, list(self.sent), list(self.sent_events))

    def delivered(self, message: FollowUp, now: int) -> Pending:
        return Pending(self.event, self.due, self.cancelled, [*self.sent, now][-MAX_SENT_KEPT:],
                       [*self.sent_events, message.event][-MAX_SENT_KEPT:])


def qualifies(rule: Rule, session: Session, attributes: Mapping[str, Any]) -> bool:
    """Whether this request (re)schedules the rule's follow-up: a cart waiting without checkout for
    cart abandonment, product views and an empty cart for browse abandonment, and the rule's own
    conditions. Schedules, rollout and holdout are applied when the message comes due."""
    if not rule.enabled or session.checkout_started:
        return False
    if rule.trigger == "cart_abandoned" and not session.cart:
        return False
    if rule.trigger == "browse_abandoned" and (session.cart or not session.products):
        return False
    return rule.match(attributes)


def schedule(rule: Rule, session: Session, now: int, site: str) -> FollowUp:
    """The message for a qualifying request: due the rule's window from now."""
    due = now + rule.trigger_value * 60
    if rule.trigger == "cart_abandoned":
        items = tuple(list((k, q) for k, q in session.cart.items() if k != UNNAMED_LINE)[:MAX_ITEMS])  # nameable lines
        category = None
    else:
        items = tuple((p.id, 1) for p in reversed(session.products))
        category = max(session.categories, key=lambda k: session.categories[k].last_seen) if session.categories else None
    return FollowUp(event_id(rule.id, session.visitor_id, due), rule.id, session.visitor_id, ACTIONS[rule.trigger],
                    due, now, site, items, category)


@dataclass(frozen=True)
class Before:
    """What a request's session held before it changed, to notice the changes that cancel."""

    cart: bool
    checkout: bool

    @classmethod
    def of(cls, session: Session) -> Before:
        return cls(bool(session.cart), session.checkout_started)


def cancelled_by(rule: Rule, before: Before, after: Session, purchased: bool) -> str | None:
    """Why a request ends a pending follow-up of this rule (one KV write, on the change only)."""
    if purchased:
        return "purchase"
    if rule.trigger == "cart_abandoned" and after.checkout_started and not before.checkout:
        return "checkout"
    if rule.trigger == "browse_abandoned" and after.cart and not before.cart:
        return "cart"
    return None


@dataclass
class FollowUpPlan:
    """What one request does to follow-ups: messages to enqueue (each with its pending state) and
    pending ones to cancel (rule id, reason)."""

    visitor: str = ""
    schedule: list[FollowUp] = field(default_factory=list)
    cancel: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.schedule or self.cancel)


def plan(rules: tuple[Rule, ...], before: Before, session: Session, attributes: Mapping[str, Any], now: int,
         site: str, purchased: bool = False) -> FollowUpPlan:
    """The follow-ups a request schedules or cancels."""
    out = FollowUpPlan(session.visitor_id)
    for rule in rules:
        reason = cancelled_by(rule, before, session, purchased)
        if reason:
            out.cancel.append((rule.id, reason))
        elif site and qualifies(rule, session, attributes):
            out.schedule.append(schedule(rule, session, now, site))
    return out


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


def skip_reason(message: FollowUp, rule: Rule | None, pending: Pending | None, last_order: int,
                contact: str | None, now: int) -> str | None:
    """None when the follow-up is to be sent now; else why not (logged, never retried)."""
    if rule is None or not rule.action.followup or not rule.enabled:
        return "rule removed or disabled"
    if pending is None:
        return "nothing pending (forgotten, or never stored)"
    if message.event in pending.sent_events:
        return "already sent"
    if pending.cancelled:
        return f"cancelled: {pending.cancelled}"
    if pending.event != message.event:
        return "superseded by later activity"
    if last_order >= message.queued:
        return "cancelled: purchase"
    if contact is None:
        return "anonymous visitor (no logged-in customer id)"
    if not is_active(rule.schedule, now):
        return "outside the rule's schedule"
    if not in_rollout(rule.id, message.visitor, rule.rollout):
        return "outside the rule's rollout"
    caps = rule.caps
    if caps.per_lifetime is not None and len(pending.sent) >= caps.per_lifetime:
        return "cap: per_lifetime"
    if caps.per_day is not None and sum(1 for t in pending.sent if t > now - 86_400) >= caps.per_day:
        return "cap: per_day"
    if caps.cooldown_hours is not None and pending.sent and now - pending.sent[-1] < caps.cooldown_hours * 3600:
        return "cap: cooldown_hours"
    return None


def offer_code(secret: bytes, prefix: str, event: str) -> str:
    """The follow-up's single-use code, derived from its event (a retry mints the same code)."""
    mac = hmac.new(secret, b"nudge/followup-code/" + event.encode(), hashlib.sha256).digest()
    return f"{prefix}-{base64.b32encode(mac[:10]).decode().rstrip('=')[:10]}"


@dataclass(frozen=True)
class IssuedCode:
    """A single-use offer code in KV (`code:<CODE>`): what it grants and whether it was used."""

    code: str
    rule: str
    visitor: str
    percent: int
    amount: float | None
    category: str
    redirect: str
    expires: int
    used: int = 0  # Unix seconds of its redemption, 0 while unused

    def encode(self) -> bytes:
        return json.dumps([self.code, self.rule, self.visitor, self.percent, self.amount, self.category,
                           self.redirect, self.expires, self.used], separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> IssuedCode | None:
        if not data:
            return None
        try:
            code, rule, visitor, percent, amount, category, redirect, expires, used = json.loads(data)
            return cls(str(code), str(rule), str(visitor), int(percent), None if amount is None else float(amount),
                       str(category), str(redirect), int(expires), int(used))
        except (TypeError, ValueError):
            return None


def issue_code(secret: bytes, rule: Rule, message: FollowUp, now: int) -> IssuedCode | None:
    """The rule's offer as a single-use code valid `valid_hours` from now (None without [offer])."""
    offer = rule.offer
    if offer is None:
        return None
    return IssuedCode(offer_code(secret, offer.code, message.event), rule.id, message.visitor, offer.percent,
                      offer.amount, offer.category, offer.redirect, now + offer.valid_hours * 3600)


def payload(message: FollowUp, user_id: str, cart_items: list[dict[str, Any]],
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


def outcome(status: int | None) -> str:
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
