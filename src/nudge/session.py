"""The shopper's current session: what it holds, and its signed msgpack cookie codec.

The session lives entirely in one cookie, so it is kept small and bounded: a fixed number of
categories (least recently touched evicted first), of products per category, of cart lines and of
recent page views; counters saturate. A cookie we cannot verify or decode is never an error: it
becomes a fresh session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .signing import BadData, Signer

COOKIE_NAME = "nudge"
WIRE_VERSION = 1
VISIT_TIMEOUT = 30 * 60  # a new visit starts after 30 minutes without activity
MAX_CATEGORIES = 8
MAX_PRODUCTS_PER_CATEGORY = 8
MAX_CART_LINES = 20
MAX_RECENT_PAGES = 4
MAX_RULE_MARKS = 16
MAX_COUNTER = 65_535
MAX_DWELL_PER_PAGE = 30 * 60  # seconds one page view can contribute
MAX_ID_LENGTH = 48
MAX_COOKIE_VALUE = 3_000  # a cookie we would never write: refuse to parse larger ones


def _sat(n: float) -> int:
    return max(0, min(int(n), MAX_COUNTER))


@dataclass
class CategoryStats:
    views: int = 0  # category page views
    dwell: int = 0  # visible seconds on this category's pages and its products' pages
    products: list[str] = field(default_factory=list)  # distinct product ids, oldest first
    touched: int = 0  # last activity, for eviction


@dataclass
class PageView:
    """A page served in this visit, so client dwell reports can be credited exactly once."""

    pv: str
    category: str | None
    credited: int = 0  # seconds of dwell already credited for this page view


@dataclass
class Session:
    visitor: str
    started: int
    last_seen: int
    pages: int = 0
    categories: dict[str, CategoryStats] = field(default_factory=dict)
    cart: dict[str, int] = field(default_factory=dict)  # item id -> quantity
    checkout_started: bool = False
    orders: int = 0
    recent: list[PageView] = field(default_factory=list)
    shown: dict[str, int] = field(default_factory=dict)  # rule id -> times revealed this visit
    closed: list[str] = field(default_factory=list)  # rule ids clicked or dismissed this visit
    is_new: bool = True  # not on the wire: true when this request started the session

    @classmethod
    def fresh(cls, now: int, visitor: str | None = None) -> Session:
        return cls(visitor=visitor or new_id(), started=now, last_seen=now)

    @property
    def cart_items(self) -> int:
        return sum(self.cart.values())

    def category(self, name: str, now: int) -> CategoryStats:
        """Stats for a category, created (evicting the least recently touched) when new."""
        stats = self.categories.get(name)
        if stats is None:
            if len(self.categories) >= MAX_CATEGORIES:
                oldest = min(self.categories, key=lambda k: self.categories[k].touched)
                del self.categories[oldest]
            stats = self.categories[name] = CategoryStats()
        stats.touched = now
        return stats


def new_id(nbytes: int = 9) -> str:
    """A random URL-safe id (visitor ids, page-view ids). Called per request, never at import."""
    return secrets.token_urlsafe(nbytes)


def clean_id(value: object) -> str | None:
    """An id from untrusted input (URLs, beacons), or None when it is not a short printable str."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        return None
    if not value.isprintable() or any(c in value for c in "<>\"'&\\"):
        return None
    return value


def _to_wire(s: Session) -> list[Any]:
    return [
        WIRE_VERSION,
        s.visitor,
        s.started,
        s.last_seen,
        s.pages,
        [[k, c.views, c.dwell, c.products, c.touched] for k, c in s.categories.items()],
        [[k, q] for k, q in s.cart.items()],
        int(s.checkout_started),
        s.orders,
        [[p.pv, p.category, p.credited] for p in s.recent],
        [[k, n] for k, n in s.shown.items()],
        s.closed,
    ]


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise BadData("expected a string")
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise BadData("expected an integer")
    return v


def _list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise BadData("expected a list")
    return v


def _from_wire(w: Any) -> Session:
    w = _list(w)
    if len(w) != 12 or w[0] != WIRE_VERSION:
        raise BadData("unknown session layout")
    s = Session(visitor=_str(w[1]), started=_int(w[2]), last_seen=_int(w[3]), pages=_int(w[4]))
    for k, views, dwell, products, touched in (_list(x) for x in _list(w[5])[:MAX_CATEGORIES]):
        prods = [_str(p) for p in _list(products)][-MAX_PRODUCTS_PER_CATEGORY:]
        s.categories[_str(k)] = CategoryStats(_int(views), _int(dwell), prods, _int(touched))
    for k, q in (_list(x) for x in _list(w[6])[:MAX_CART_LINES]):
        s.cart[_str(k)] = _int(q)
    s.checkout_started = bool(_int(w[7]))
    s.orders = _int(w[8])
    for pv, cat, credited in (_list(x) for x in _list(w[9])[-MAX_RECENT_PAGES:]):
        s.recent.append(PageView(_str(pv), None if cat is None else _str(cat), _int(credited)))
    for k, n in (_list(x) for x in _list(w[10])[:MAX_RULE_MARKS]):
        s.shown[_str(k)] = _int(n)
    s.closed = [_str(k) for k in _list(w[11])][-MAX_RULE_MARKS:]
    s.is_new = False
    return s


class SessionCodec:
    """Encodes sessions into cookie values and back, signed so they cannot be forged."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def encode(self, session: Session) -> str:
        return self._signer.sign(msgpack.packb(_to_wire(session), use_bin_type=True))

    def decode(self, value: str) -> Session:
        """The session in a cookie value; raises BadData for anything we did not issue."""
        if len(value) > MAX_COOKIE_VALUE:
            raise BadData("cookie too large")
        payload = self._signer.unsign(value)
        try:
            wire = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise BadData("payload is not msgpack") from exc
        try:
            return _from_wire(wire)
        except (TypeError, ValueError) as exc:  # wrong arity in a nested row
            raise BadData("malformed session") from exc

    def load(self, value: str | None, now: int) -> Session:
        """The visitor's session, or a fresh one: for a missing, bad or foreign cookie, or when
        the last visit ended (30 minutes idle; the visitor id is kept)."""
        if not value:
            return Session.fresh(now)
        try:
            session = self.decode(value)
        except BadData:
            return Session.fresh(now)
        if now - session.last_seen > VISIT_TIMEOUT:
            fresh = Session.fresh(now, visitor=session.visitor)
            fresh.cart = session.cart
            return fresh
        return session
