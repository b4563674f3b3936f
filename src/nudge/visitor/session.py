"""The shopper's current visit: what it holds, and its signed msgpack cookie codec.

The session lives entirely in one cookie, so it is small and hard-bounded: at most
`MAX_COOKIE_BYTES` encoded whatever the history (and ~300 bytes for a typical 20-page visit).
Lists keep the most recent entries, counters saturate, products are kept per category as 32-bit
hashes (enough to count distinct views) plus a few recent ids in full, and if a session still does
not fit, the least valuable data is shed first (`_shed`). A cookie we cannot verify or decode is
never an error: it becomes a fresh session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

from nudge.signing import BadData, Signer

COOKIE_NAME = "nudge"
WIRE_VERSION = 2
VISIT_TIMEOUT = 30 * 60  # a new visit starts after 30 minutes without activity
MAX_COOKIE_BYTES = 1024  # the encoded cookie value, whatever the history
MAX_CATEGORIES = 8
MAX_PRODUCTS_PER_CATEGORY = 8
MAX_RECENT_PRODUCTS = 4
MAX_CART_LINES = 20
MAX_RECENT_PAGES = 3
MAX_RULE_MARKS = 16
MAX_SEARCHES = 3
MAX_COUNTER = 65_535
MAX_MONEY = 10_000_000_00  # cents: cart values and revenue saturate here
MAX_DWELL_PER_PAGE = 30 * 60  # seconds one page view can contribute
MAX_ID_LENGTH = 48
MAX_TEXT = 32  # category names, product ids, search terms, UTM values, referrer hosts
MAX_COOKIE_VALUE = 4096  # never even try to verify a larger cookie
MAX_SEEN_EVENTS = 16  # event and order ids remembered per visit (beacon replays are dropped)
MAX_VISIT_EVENTS = 200  # client-reported events counted per visit; the rest are dropped
# Where the cart's figures last came from (Session.cart_source), as /_nudge/explain words it.
CART_FROM_NOTHING, CART_FROM_EVENTS, CART_FROM_EDGE, CART_FROM_SHOP = 0, 1, 2, 3
CART_SOURCES = {
    CART_FROM_NOTHING: "nothing yet",
    CART_FROM_EVENTS: "the browser's dataLayer cart events (relayed by the client script)",
    CART_FROM_EDGE: "cart requests seen at the edge (site.toml [cart] routes)",
    CART_FROM_SHOP: "the shop itself (X-Nudge-Cart header or [cart] truth_url)",
}
UNNAMED_LINE = ""  # a cart line for items the shop counted but nudge cannot name (cart_truth)


def sat(n: float) -> int:
    """A counter value, saturated to 0..MAX_COUNTER."""
    return max(0, min(int(n), MAX_COUNTER))


@dataclass
class CategoryStats:
    views: int = 0  # category page views
    dwell: int = 0  # visible seconds on this category's pages and its products' pages
    products: list[int] = field(default_factory=list)  # key16 of distinct products, oldest first
    last_seen: int = 0  # Unix seconds; also the eviction order


@dataclass
class ProductStats:
    id: str
    views: int = 0
    dwell: int = 0


@dataclass
class PageView:
    """A page served in this visit, so client dwell reports are credited exactly once."""

    pv: int  # the visit's page number
    category: int | None  # key16 of the category name
    product: int | None  # key16 of the product id
    credited: int = 0  # seconds of dwell already credited


@dataclass
class Served:
    """A nudge the edge rendered for this visitor in this visit: the only rules its beacons may
    report on. `owed`: reveals the client may still report (one per page the nudge was rendered on
    and not already counted by the edge); `revealed`: seen by the shopper (counted at the edge, or
    a reveal beacon was accepted), so a click or dismiss can count."""

    owed: int = 0
    revealed: bool = False


@dataclass
class Source:
    """Where the visit came from (first page of the visit)."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer: str | None = None  # host only


@dataclass
class Session:
    visitor: bytes
    started: int
    last_seen: int
    pages: int = 0
    categories: dict[str, CategoryStats] = field(default_factory=dict)
    products: list[ProductStats] = field(default_factory=list)  # most recent last
    cart: dict[str, int] = field(default_factory=dict)  # item id -> quantity
    cart_value: int = 0  # cents
    cart_changed: int = 0  # Unix seconds of the last cart change, 0 for never
    checkout_started: bool = False
    orders: int = 0
    revenue: int = 0  # cents, this visit
    recent: list[PageView] = field(default_factory=list)
    shown: dict[int, int] = field(default_factory=dict)  # key32(rule id) -> reveals this visit
    closed: list[int] = field(default_factory=list)  # key32(rule id): clicked or dismissed
    searches: list[str] = field(default_factory=list)  # normalized terms, most recent last
    source: Source = field(default_factory=Source)
    identity: int | None = None  # first 32 bits of the linked identity's keyed hash, to notice a change
    served: dict[int, Served] = field(default_factory=dict)  # key32(rule id) -> what the edge rendered
    seen: list[int] = field(default_factory=list)  # key32 of event ids and order ids counted this visit
    reported: int = 0  # client-reported events counted this visit (capped at MAX_VISIT_EVENTS)
    cart_source: int = CART_FROM_NOTHING  # CART_FROM_*: where the cart's figures last came from
    edge_cart_seen: bool = False  # this visit: the edge saw a cart change or the shop's cart, so
    # the browser's cart events no longer count (until then they do: a wrong route guess is not blind)
    is_new: bool = True  # not on the wire: this request started the visit
    ended: Session | None = None  # not on the wire: the visit this one replaced (30 min idle)

    @classmethod
    def fresh(cls, now: int, visitor: bytes | None = None) -> Session:
        return cls(visitor=visitor or new_visitor(), started=now, last_seen=now)

    @property
    def visitor_id(self) -> str:
        return self.visitor.hex()

    @property
    def cart_items(self) -> int:
        return sum(self.cart.values())

    def category(self, name: str, now: int) -> CategoryStats:
        """Stats for a category, created (evicting the least recently seen) when new."""
        stats = self.categories.get(name)
        if stats is None:
            if len(self.categories) >= MAX_CATEGORIES:
                oldest = min(self.categories, key=lambda k: self.categories[k].last_seen)
                del self.categories[oldest]
            stats = self.categories[name] = CategoryStats()
        stats.last_seen = now
        return stats

    def product(self, product_id: str) -> ProductStats:
        """Stats for a recently viewed product, moved to the most recent position."""
        for i, p in enumerate(self.products):
            if p.id == product_id:
                self.products.append(self.products.pop(i))
                return p
        p = ProductStats(product_id)
        self.products.append(p)
        del self.products[:-MAX_RECENT_PRODUCTS]
        return p


def new_visitor() -> bytes:
    """A random visitor id. Called per request, never at import (Workers snapshot the top level)."""
    return secrets.token_bytes(8)


def clean_id(value: object, limit: int = MAX_ID_LENGTH) -> str | None:
    """An id from untrusted input (URLs, beacons), or None when it is not a short printable str."""
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    if not value.isprintable() or any(c in value for c in "<>\"'&\\"):
        return None
    return value


# -- wire format ---------------------------------------------------------------------------------


def _to_wire(s: Session) -> list[Any]:
    t0 = s.started
    return [
        WIRE_VERSION,
        s.visitor,
        t0,
        s.last_seen - t0,
        s.pages,
        [[k, c.views, c.dwell, c.last_seen - t0, c.products] for k, c in s.categories.items()],
        [[p.id, p.views, p.dwell] for p in s.products],
        [[k, q] for k, q in s.cart.items()],
        s.cart_value,
        s.cart_changed - t0 if s.cart_changed else None,
        int(s.checkout_started),
        s.orders,
        s.revenue,
        [[p.pv, p.category, p.product, p.credited] for p in s.recent],
        [[k, n] for k, n in s.shown.items()],
        s.closed,
        s.searches,
        [s.source.utm_source, s.source.utm_medium, s.source.utm_campaign, s.source.referrer],
        s.identity,
        [[k, e.owed, int(e.revealed)] for k, e in s.served.items()],
        s.seen,
        s.reported,
    ] + ([s.cart_source, int(s.edge_cart_seen)] if s.cart_source or s.edge_cart_seen else [])


def _check(value: Any, kind: type | tuple[type, ...], nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise BadData(f"expected {kind}, got {type(value).__name__}")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise BadData("negative number")
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        raise BadData("string too long")
    return value


def _rows(value: Any, width: int, limit: int) -> list[list[Any]]:
    rows: list[list[Any]] = _check(value, list)
    if len(rows) > limit:
        raise BadData("list too long")
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise BadData("malformed row")
    return rows


def _from_wire(w: Any) -> Session:
    # 19 fields: a cookie from before exposures were recorded (read as "nothing served yet"); 24:
    # with the cart's source (22 while it has none, so such cookies stay readable by older code)
    if not isinstance(w, list) or len(w) not in (19, 22, 24) or w[0] != WIRE_VERSION:
        raise BadData("unknown session layout")
    t0 = _check(w[2], int)
    visitor = _check(w[1], bytes)
    if len(visitor) != 8:
        raise BadData("bad visitor id")
    s = Session(visitor=visitor, started=t0, last_seen=t0 + _check(w[3], int), pages=_check(w[4], int))
    for k, views, dwell, seen, prods in _rows(w[5], 5, MAX_CATEGORIES):
        keys = [_check(p, int) for p in _check(prods, list)][-MAX_PRODUCTS_PER_CATEGORY:]
        s.categories[_check(k, str)] = CategoryStats(_check(views, int), _check(dwell, int), keys,
                                                     t0 + _check(seen, int))
    for pid, views, dwell in _rows(w[6], 3, MAX_RECENT_PRODUCTS):
        s.products.append(ProductStats(_check(pid, str), _check(views, int), _check(dwell, int)))
    for k, q in _rows(w[7], 2, MAX_CART_LINES):
        s.cart[_check(k, str)] = _check(q, int)
    s.cart_value = _check(w[8], int)
    # Relative to this visit's start; negative for a cart carried over from an earlier visit.
    changed = w[9]
    if changed is not None and (isinstance(changed, bool) or not isinstance(changed, int) or t0 + changed < 0):
        raise BadData("bad cart time")
    s.cart_changed = 0 if changed is None else t0 + changed
    s.checkout_started = bool(_check(w[10], int))
    s.orders = _check(w[11], int)
    s.revenue = _check(w[12], int)
    for pv, cat, prod, credited in _rows(w[13], 4, MAX_RECENT_PAGES):
        s.recent.append(PageView(_check(pv, int), _check(cat, int, True), _check(prod, int, True),
                                 _check(credited, int)))
    for k, n in _rows(w[14], 2, MAX_RULE_MARKS):
        s.shown[_check(k, int)] = _check(n, int)
    s.closed = [_check(k, int) for k in _check(w[15], list)][-MAX_RULE_MARKS:]
    s.searches = [_check(t, str) for t in _check(w[16], list)][-MAX_SEARCHES:]
    src = _check(w[17], list)
    if len(src) != 4:
        raise BadData("malformed source")
    s.source = Source(*(_check(v, str, True) for v in src))
    s.identity = _check(w[18], int, True)
    if len(w) == 24:
        s.cart_source = _check(w[22], int)
        if s.cart_source not in CART_SOURCES:
            raise BadData("unknown cart source")
        s.edge_cart_seen = bool(_check(w[23], int))
    if len(w) >= 22:
        for k, owed, revealed in _rows(w[19], 3, MAX_RULE_MARKS):
            s.served[_check(k, int)] = Served(_check(owed, int), bool(_check(revealed, int)))
        s.seen = [_check(k, int) for k in _check(w[20], list)][-MAX_SEEN_EVENTS:]
        s.reported = _check(w[21], int)
    s.is_new = False
    return s


def _shed(s: Session) -> bool:
    """Drops the least valuable piece of a session that is over budget; False when nothing is left."""
    if s.searches:
        del s.searches[0]
    elif len(s.seen) > 4:
        del s.seen[0]
    elif len(s.recent) > 1:
        del s.recent[0]
    elif len(s.products) > 1:
        del s.products[0]
    elif any(len(c.products) > 2 for c in s.categories.values()):
        biggest = max(s.categories.values(), key=lambda c: len(c.products))
        del biggest.products[0]
    elif len(s.categories) > 1:
        del s.categories[min(s.categories, key=lambda k: s.categories[k].last_seen)]
    elif len(s.cart) > 1:
        del s.cart[next(iter(s.cart))]
    elif s.shown or s.closed or s.served:
        s.shown.clear()
        s.served.clear()
        del s.closed[:-1]
    else:
        return False
    return True


class SessionCodec:
    """Encodes sessions into cookie values and back, signed so they cannot be forged."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def encode(self, session: Session) -> str:
        """The cookie value, at most MAX_COOKIE_BYTES (older detail is dropped to fit)."""
        while True:
            value = self._signer.sign(msgpack.packb(_to_wire(session), use_bin_type=True))
            if len(value) <= MAX_COOKIE_BYTES or not _shed(session):
                return value

    def decode(self, value: str) -> Session:
        """The session in a cookie value; raises BadData for anything we did not issue."""
        if len(value) > MAX_COOKIE_VALUE:
            raise BadData("cookie too large")
        payload = self._signer.unsign(value)
        try:
            wire = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise BadData("payload is not msgpack") from exc
        return _from_wire(wire)

    def load(self, value: str | None, now: int) -> Session:
        """The visitor's session, or a fresh one: for a missing, bad or foreign cookie, or when
        the last visit ended (30 minutes idle; the visitor id and cart are kept)."""
        if not value:
            return Session.fresh(now)
        try:
            session = self.decode(value)
        except BadData:
            return Session.fresh(now)
        if now - session.last_seen > VISIT_TIMEOUT:
            fresh = Session.fresh(now, visitor=session.visitor)
            fresh.cart, fresh.cart_value, fresh.cart_changed = session.cart, session.cart_value, session.cart_changed
            fresh.cart_source = session.cart_source  # edge_cart_seen is per visit: not carried
            fresh.identity = session.identity
            fresh.ended = session
            return fresh
        return session
