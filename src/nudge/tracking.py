"""How what the shopper does changes the session: page views, dwell reports, cart events, nudges."""

from __future__ import annotations

from .beacon import Beacon
from .pages import Page
from .session import (
    MAX_CART_LINES,
    MAX_COUNTER,
    MAX_DWELL_PER_PAGE,
    MAX_PRODUCTS_PER_CATEGORY,
    MAX_RECENT_PAGES,
    MAX_RULE_MARKS,
    PageView,
    Session,
)


def _sat(n: int) -> int:
    return max(0, min(n, MAX_COUNTER))


def record_page_view(session: Session, page: Page, pv: str, now: int) -> None:
    """Counts a served page: category views, distinct products, checkout, and the page-view id
    that later dwell reports are credited against."""
    session.pages = _sat(session.pages + 1)
    session.last_seen = now
    if page.category:
        stats = session.category(page.category, now)
        if page.type == "category":
            stats.views = _sat(stats.views + 1)
        if page.type == "product" and page.product:
            if page.product in stats.products:
                stats.products.remove(page.product)
            stats.products.append(page.product)
            del stats.products[:-MAX_PRODUCTS_PER_CATEGORY]
    if page.type == "checkout":
        session.checkout_started = True
    session.recent.append(PageView(pv, page.category))
    del session.recent[:-MAX_RECENT_PAGES]


def credit_dwell(session: Session, pv: str, seconds: int, now: int) -> bool:
    """Credits a cumulative dwell report for page view `pv` exactly once (reports may arrive twice,
    late, or out of order: only the part not yet credited counts). True when anything changed."""
    for view in session.recent:
        if view.pv != pv:
            continue
        total = max(0, min(int(seconds), MAX_DWELL_PER_PAGE))
        delta = total - view.credited
        if delta <= 0:
            return False
        view.credited = total
        if view.category:
            stats = session.category(view.category, now)
            stats.dwell = _sat(stats.dwell + delta)
        return True
    return False


def parse_dwell_cookie(value: str | None) -> tuple[str, int] | None:
    """The client's `nudge_dw` cookie, ``<pv>.<seconds>``; None when absent or malformed."""
    if not value or len(value) > 64:
        return None
    pv, sep, seconds = value.rpartition(".")
    if not sep or not pv or not seconds.isdigit() or len(seconds) > 6:
        return None
    return pv, int(seconds)


def apply_beacon(session: Session, beacon: Beacon, now: int) -> None:
    """Applies a validated beacon to the session."""
    session.last_seen = now
    if beacon.pv is not None and beacon.dwell is not None:
        credit_dwell(session, beacon.pv, beacon.dwell, now)
    for event in beacon.events:
        if event.type == "add_to_cart":
            for item in event.items:
                if item.id in session.cart or len(session.cart) < MAX_CART_LINES:
                    session.cart[item.id] = min(session.cart.get(item.id, 0) + max(item.quantity, 1), 999)
        elif event.type == "remove_from_cart":
            for item in event.items:
                left = session.cart.get(item.id, 0) - max(item.quantity, 1)
                if left > 0:
                    session.cart[item.id] = left
                else:
                    session.cart.pop(item.id, None)
        elif event.type == "begin_checkout":
            session.checkout_started = True
        elif event.type == "purchase":
            session.orders = _sat(session.orders + 1)
            session.cart.clear()
            session.checkout_started = False
        elif event.type == "nudge_shown" and event.rule:
            if event.rule in session.shown or len(session.shown) < MAX_RULE_MARKS:
                session.shown[event.rule] = _sat(session.shown.get(event.rule, 0) + 1)
        elif event.type == "nudge_dismissed" and event.rule:
            close_rule(session, event.rule)


def close_rule(session: Session, rule_id: str) -> None:
    """Marks a rule as done for this visit (clicked or dismissed): it will not show again."""
    if rule_id not in session.closed:
        session.closed.append(rule_id)
        del session.closed[:-MAX_RULE_MARKS]
