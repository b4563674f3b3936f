"""Visitor attributes: the only view of a shopper that rule conditions see.

Built from the session (this visit) and the long-term profile (from KV). Names are stable and
documented in the README; conditions address them with dotted paths, e.g.
``category.sneakers.dwell_seconds``.
"""

from __future__ import annotations

from typing import Any

from .pages import Page
from .profile import Profile
from .session import Session


def visitor_attributes(session: Session, page: Page, profile: Profile | None) -> dict[str, Any]:
    visits = profile.visits if profile else 1
    return {
        "page": {"type": page.type, "category": page.category, "product": page.product},
        "session": {"pages": session.pages, "new": session.is_new},
        "category": {
            name: {
                "views": c.views,
                "dwell_seconds": c.dwell,
                "products_viewed": len(c.products),
            }
            for name, c in session.categories.items()
        },
        "cart": {
            "items": session.cart_items,
            "lines": len(session.cart),
            "checkout_started": session.checkout_started,
        },
        "visitor": {
            "visits": visits,
            "returning": visits > 1,
            "orders": (profile.orders if profile else 0) + session.orders,
        },
    }


def with_extra_dwell(attributes: dict[str, Any], category: str, seconds: int) -> dict[str, Any]:
    """A copy of `attributes` as they will be once the shopper has stayed `seconds` longer on a
    page of `category` (used to pre-render nudges that become due while the page is open)."""
    cats = dict(attributes["category"])
    stats = dict(cats.get(category, {"views": 0, "dwell_seconds": 0, "products_viewed": 0}))
    stats["dwell_seconds"] = stats["dwell_seconds"] + seconds
    cats[category] = stats
    return {**attributes, "category": cats}
