"""Visitor attributes: the only view of a shopper that rule conditions see.

Built from the session (this visit), the long-term profile (KV) and the request itself (device,
geo, local time). Names are stable and documented in the README's attribute table; conditions
address them with dotted paths, e.g. ``category.sneakers.dwell_seconds``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nudge.rules.schedule import local_time
from nudge.visitor.pages import Page

if TYPE_CHECKING:  # types only: the build step imports this module without msgpack installed
    from nudge.visitor.profile import Profile
    from nudge.visitor.session import Session

DAY = 24 * 3600
ACTIVE_DAYS = 7  # last visit within a week: active; within 30 days: dormant; older: lapsed
DORMANT_DAYS = 30
HIGH_AOV_CENTS = 150_00
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|(android(?!.*mobile))", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.I)


# Every attribute path a condition may use; `*` is a category name or product id. A test checks
# this list against what visitor_attributes() builds, so the two cannot drift apart.
ATTRIBUTE_PATHS = (
    "page.type", "page.path", "page.category", "page.product",
    "session.pages", "session.new", "session.duration_seconds", "session.searches",
    "visitor.new", "visitor.returning", "visitor.visits", "visitor.days_since_last_visit",
    "visitor.recency", "visitor.buyer", "visitor.orders", "visitor.revenue", "visitor.aov",
    "visitor.high_aov", "visitor.offers_redeemed", "visitor.discount_sensitive", "visitor.intent",
    "visitor.engagement",
    "category.*.views", "category.*.dwell_seconds", "category.*.products_viewed",
    "category.*.last_seen_seconds_ago", "category.*.affinity",
    "product.*.views", "product.*.dwell_seconds", "products.recent",
    "cart.items", "cart.lines", "cart.value", "cart.age_minutes", "cart.age_seconds", "cart.checkout_started",
    "cart.free_shipping_left",
    "utm.source", "utm.medium", "utm.campaign", "referrer.host", "device", "geo.country",
    "time.hour", "time.weekday",
)


def known_attribute(path: str) -> bool:
    """True for a documented attribute path, or an object on the way to one (`cart`, `category.x`)."""
    parts = path.split(".")
    for pattern in ATTRIBUTE_PATHS:
        segments = pattern.split(".")
        if len(parts) <= len(segments) and all(s in ("*", p) for s, p in zip(segments, parts, strict=False)):
            return True
    return False


def leaf_attribute(path: str) -> bool:
    """True for a documented path to a value (`cart.value`), not to an object (`cart`)."""
    parts = path.split(".")
    return any(len(segments) == len(parts) and all(s in ("*", p) for s, p in zip(segments, parts, strict=True))
               for segments in (pattern.split(".") for pattern in ATTRIBUTE_PATHS))


def closest_attribute(path: str) -> str | None:
    """The documented path a misspelled one most likely meant (wildcards filled from `path`)."""
    import difflib

    parts = path.split(".")
    candidates = []
    for pattern in ATTRIBUTE_PATHS:
        segments = pattern.split(".")
        if len(segments) == len(parts):
            candidates.append(".".join(p if s == "*" else s for s, p in zip(segments, parts, strict=True)))
    best = difflib.get_close_matches(path, candidates, n=1, cutoff=0.6)
    return best[0] if best else None


@dataclass(frozen=True)
class RequestContext:
    """What the request itself says about the shopper (no PII: no IP, no raw user agent kept)."""

    path: str = "/"
    user_agent: str = ""
    country: str | None = None  # request.cf.country
    timezone: str | None = None  # request.cf.timezone (IANA)


@lru_cache(maxsize=1024)  # user agents repeat; the two searches cost ~15 µs in Pyodide
def device_class(user_agent: str) -> str:
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def _recency(profile: Profile | None, now: int, visits: int) -> tuple[int | None, str]:
    if not profile or visits <= 1 or not profile.last_seen:
        return None, "new"
    days = max(0, (now - profile.last_seen) // DAY)
    return days, "active" if days <= ACTIVE_DAYS else "dormant" if days <= DORMANT_DAYS else "lapsed"


def intent_level(session: Session, returning: bool) -> str:
    """high: something in the cart or checkout begun; mid: a product seen twice, 3+ product views,
    or a returning visitor looking at products; low: browsing."""
    if session.cart or session.checkout_started:
        return "high"
    views = sum(p.views for p in session.products)
    if any(p.views >= 2 for p in session.products) or views >= 3 or (returning and views):
        return "mid"
    return "low"


def engagement_score(session: Session, visits: int) -> int:
    """0..100: 2 per page, 3 per visible minute, 4 per product view, 5 per earlier visit,
    10 with a cart, capped at 100."""
    dwell_minutes = sum(c.dwell for c in session.categories.values()) // 60
    product_views = sum(p.views for p in session.products)
    raw = (2 * session.pages + 3 * dwell_minutes + 4 * product_views + 5 * max(0, visits - 1)
           + (10 if session.cart else 0))
    return min(100, raw)


def visitor_attributes(session: Session, page: Page, profile: Profile | None, now: int,
                       request: RequestContext | None = None,
                       free_shipping_over: float | None = None) -> dict[str, Any]:
    """`free_shipping_over` is the shop's threshold (site.toml [shop]), for cart.free_shipping_left."""
    request = request or RequestContext()
    stored = profile
    if session.is_new and profile is not None:  # the visit's first page: KV has not seen this visit yet
        from nudge.visitor.profile import merged_profile  # (not at import: the build step has no msgpack)

        profile = merged_profile(profile, now, new_visit=True, ended=session.ended)  # as it will be stored
    visits = max(profile.visits if profile else 1, 1)
    # A purchase reaches the KV profile at once (beacon -> key event). When the profile read here
    # already has an order from this visit, it holds this visit's orders: do not count them twice.
    counted = profile is not None and profile.last_order >= session.started
    orders = (profile.orders if profile else 0) + (0 if counted else session.orders)
    revenue = (profile.revenue if profile else 0) + (0 if counted else session.revenue)
    redeemed = profile.offers_redeemed if profile else 0
    aov = round(revenue / orders / 100, 2) if orders else 0.0
    days, recency = _recency(stored, now, visits)
    local = local_time(now, request.timezone)
    affinity = profile.affinity if profile else {}
    return {
        "page": {"type": page.type, "path": request.path, "category": page.category, "product": page.product},
        "session": {
            "pages": session.pages,
            "new": session.is_new,
            "duration_seconds": max(0, now - session.started),
            "searches": list(reversed(session.searches)),
        },
        "visitor": {
            "new": visits <= 1,
            "returning": visits > 1,
            "visits": visits,
            "days_since_last_visit": days,
            "recency": recency,
            "buyer": "none" if orders == 0 else "first" if orders == 1 else "repeat",
            "orders": orders,
            "revenue": round(revenue / 100, 2),
            "aov": aov,
            "high_aov": aov * 100 >= HIGH_AOV_CENTS,
            "offers_redeemed": redeemed,
            "discount_sensitive": orders > 0 and redeemed / orders >= 0.5,
            "intent": intent_level(session, visits > 1),
            "engagement": engagement_score(session, visits),
        },
        "category": {
            # categories of earlier visits only: their long-term interest, nothing seen this visit
            **{name: {"views": 0, "dwell_seconds": 0, "products_viewed": 0, "last_seen_seconds_ago": None,
                      "affinity": round(value, 2)} for name, value in affinity.items()},
            **{name: {
                "views": c.views,
                "dwell_seconds": c.dwell,
                "products_viewed": len(c.products),
                "last_seen_seconds_ago": max(0, now - c.last_seen),
                "affinity": round(affinity.get(name, 0.0), 2),
            } for name, c in session.categories.items()},
        },
        "product": {p.id: {"views": p.views, "dwell_seconds": p.dwell} for p in session.products},
        "products": {"recent": [p.id for p in reversed(session.products)]},
        "cart": {
            "items": session.cart_items,
            "lines": len(session.cart),
            "value": round(session.cart_value / 100, 2),
            "age_minutes": max(0, now - session.cart_changed) // 60 if session.cart_changed and session.cart else None,
            "age_seconds": max(0, now - session.cart_changed) if session.cart_changed and session.cart else None,
            "checkout_started": session.checkout_started,
            "free_shipping_left": None if free_shipping_over is None
            else round(max(0.0, free_shipping_over - session.cart_value / 100), 2),
        },
        "utm": {"source": session.source.utm_source, "medium": session.source.utm_medium,
                "campaign": session.source.utm_campaign},
        "referrer": {"host": session.source.referrer},
        "device": device_class(request.user_agent),
        "geo": {"country": request.country},
        "time": {"hour": local.hour, "weekday": WEEKDAYS[local.weekday()]},
    }


def with_extra_dwell(attributes: dict[str, Any], category: str, seconds: int) -> dict[str, Any]:
    """A copy of `attributes` as they will be once the shopper has stayed `seconds` longer on a
    page of `category` (used to pre-render nudges that become due while the page is open)."""
    cats = dict(attributes["category"])
    stats = dict(cats.get(category, {"views": 0, "dwell_seconds": 0, "products_viewed": 0}))
    stats["dwell_seconds"] = stats["dwell_seconds"] + seconds
    cats[category] = stats
    return {**attributes, "category": cats}
