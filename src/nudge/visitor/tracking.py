"""How what the shopper does changes the session: page views, searches, where the visit came from,
dwell reports, cart events and nudge interactions. Everything from the visitor is bounded here."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from nudge.keys import key16, key32
from nudge.visitor.beacon import Beacon
from nudge.visitor.beacon import Event as BeaconEvent
from nudge.visitor.pages import Page
from nudge.visitor.session import (
    CART_FROM_EVENTS,
    MAX_CART_LINES,
    MAX_DWELL_PER_PAGE,
    MAX_MONEY,
    MAX_PRODUCTS_PER_CATEGORY,
    MAX_RECENT_PAGES,
    MAX_RULE_MARKS,
    MAX_SEARCHES,
    MAX_SEEN_EVENTS,
    MAX_TEXT,
    MAX_VISIT_EVENTS,
    PageView,
    Served,
    Session,
    sat,
)

SEARCH_PARAMS = ("q", "query", "search", "s", "term", "keywords")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def record_page_view(session: Session, page: Page, now: int, query: str = "", referrer: str | None = None,
                     own_host: str | None = None) -> int:
    """Counts a served page and returns its page-view number (what dwell reports refer to)."""
    session.pages = sat(session.pages + 1)
    session.last_seen = now
    if session.pages == 1:
        record_source(session, query, referrer, own_host)
    product_key = None
    if page.category:
        stats = session.category(page.category, now)
        if page.type == "category":
            stats.views = sat(stats.views + 1)
    if page.type == "product" and page.product:
        product_id = page.product[:MAX_TEXT]  # as the session keeps it, so dwell finds it again
        product_key = key16(product_id)
        if page.category:
            stats = session.categories[page.category]
            if product_key in stats.products:
                stats.products.remove(product_key)
            stats.products.append(product_key)
            del stats.products[:-MAX_PRODUCTS_PER_CATEGORY]
        product = session.product(product_id)
        product.views = sat(product.views + 1)
    if page.type == "search":
        term = search_term(query)
        if term:
            if term in session.searches:
                session.searches.remove(term)
            session.searches.append(term)
            del session.searches[:-MAX_SEARCHES]
    if page.type == "checkout":
        session.checkout_started = True
    category_key = key16(page.category) if page.category else None
    session.recent.append(PageView(session.pages, category_key, product_key))
    del session.recent[:-MAX_RECENT_PAGES]
    return session.pages


def uncategorized_products(session: Session) -> list[str]:
    """Products viewed in this visit whose category nobody knew at the time (its page declared it
    in markup nudge read while the page streamed, after the view was counted)."""
    waiting = {view.product for view in session.recent if view.product is not None and view.category is None}
    return [p.id for p in session.products if key16(p.id) in waiting]


def categorize_late(session: Session, product_id: str, category: str, now: int) -> bool:
    """Credits a product's earlier uncategorized views to `category` as if it had been known then:
    the product joins the category's viewed products and the dwell already credited counts for it.
    True when anything changed."""
    product_key, changed = key16(product_id), False
    for view in session.recent:
        if view.product != product_key or view.category is not None:
            continue
        stats = session.category(category, now)
        view.category = key16(category)
        stats.dwell = sat(stats.dwell + view.credited)
        if product_key in stats.products:
            stats.products.remove(product_key)
        stats.products.append(product_key)
        del stats.products[:-MAX_PRODUCTS_PER_CATEGORY]
        changed = True
    return changed


def search_term(query: str) -> str | None:
    """The normalized search term of a query string: lower case, words only, at most 32 chars
    (never raw free text)."""
    params = parse_qs(query[:2048])
    for name in SEARCH_PARAMS:
        for raw in params.get(name, []):
            words = _NON_WORD.sub(" ", raw[:256].lower()).split()
            term = " ".join(words)[:MAX_TEXT].strip()
            if term:
                return term
    return None


def record_source(session: Session, query: str, referrer: str | None, own_host: str | None) -> None:
    """UTM parameters and referrer host of the visit's first page (short, lower-case tokens)."""
    params = parse_qs(query[:2048])

    def utm(name: str) -> str | None:
        value = (params.get(name) or [""])[0]
        token = _NON_WORD.sub("-", value.lower()).strip("-")[:MAX_TEXT]
        return token or None

    session.source.utm_source = utm("utm_source")
    session.source.utm_medium = utm("utm_medium")
    session.source.utm_campaign = utm("utm_campaign")
    host = referrer_host(referrer)
    host = host.lower().removeprefix("www.")[:MAX_TEXT]
    own = (own_host or "").lower().removeprefix("www.")
    session.source.referrer = host if host and host != own else None


def referrer_host(referrer: str | None) -> str:
    """The host of a Referer header; "" when there is none or the header is not a URL (a browser
    sends what it likes: `http://[` makes urlsplit raise)."""
    if not referrer or len(referrer) >= 2048:
        return ""
    try:
        return urlsplit(referrer).hostname or ""
    except ValueError:
        return ""


def credit_dwell(session: Session, pv: int, seconds: int, now: int) -> bool:
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
        for name, stats in session.categories.items():
            if view.category is not None and key16(name) == view.category:
                stats.dwell = sat(stats.dwell + delta)
        for product in session.products:
            if view.product is not None and key16(product.id) == view.product:
                product.dwell = sat(product.dwell + delta)
        return True
    return False


def parse_dwell_cookie(value: str | None) -> tuple[int, int] | None:
    """The client's `nudge_dw` cookie, ``<pv>.<seconds>``; None when absent or malformed."""
    if not value or len(value) > 24:
        return None
    pv, sep, seconds = value.partition(".")
    if not sep or not pv.isdigit() or not seconds.isdigit() or len(pv) > 5 or len(seconds) > 6:
        return None
    return int(pv), int(seconds)


def _cents(value: float) -> int:
    return max(0, min(int(round(value * 100)), MAX_MONEY))


def record_served(session: Session, rule_id: str, revealed: bool) -> None:
    """Notes a nudge the edge rendered on this page: its beacons may now report on it. `revealed`:
    visible as the page loads (the edge counted the impression); otherwise the client owes one
    reveal for this page."""
    key = key32(rule_id)
    served = session.served.get(key)
    if served is None:
        if len(session.served) >= MAX_RULE_MARKS:
            return  # bounded: a 17th nudge in one visit cannot be reported on
        served = session.served[key] = Served()
    if revealed:
        served.revealed = True
    else:
        served.owed = min(served.owed + 1, 255)


def record_order(session: Session, value: float, now: int) -> None:
    """An order the shop confirmed (never one the browser claims): one more order this visit, its
    revenue, and the cart is done."""
    session.orders = sat(session.orders + 1)
    session.revenue = min(session.revenue + _cents(value), MAX_MONEY)
    session.cart.clear()
    session.cart_value = 0
    session.cart_changed = now
    session.checkout_started = False


def first_time(session: Session, token: str) -> bool:
    """True the first time this visit sees an event or order id (remembered as its 32-bit key, at
    most MAX_SEEN_EVENTS of them); False for a replay."""
    key = key32(token)
    if key in session.seen:
        return False
    session.seen.append(key)
    del session.seen[:-MAX_SEEN_EVENTS]
    return True


def _admitted(session: Session, event: BeaconEvent) -> bool:
    """Whether a client-reported event counts: within the visit's cap, not a replayed id, and for a
    nudge event only about a nudge the edge served this visitor (a reveal per page it was rendered
    on, one click or dismiss per visit, of a nudge seen or still owed a reveal)."""
    if session.reported >= MAX_VISIT_EVENTS:
        return False
    if event.type in ("nudge_shown", "nudge_clicked", "nudge_dismissed"):
        served = session.served.get(key32(event.rule or ""))
        if served is None:
            return False
        if event.type == "nudge_shown" and served.owed <= 0:
            return False
        if event.type != "nudge_shown" and (not served.revealed and served.owed <= 0
                                             or is_closed(session, event.rule or "")):
            return False
    if event.id is not None and not first_time(session, "event:" + event.id):
        return False
    session.reported += 1
    return True


def apply_beacon(session: Session, beacon: Beacon, now: int) -> list[BeaconEvent]:
    """Applies a validated beacon to the session and returns the events that counted (see
    `_admitted`). Once the edge has seen the cart this visit (a `[cart]` route's change or the
    shop's own figures: `session.edge_cart_seen`) add/remove events are ignored: the edge counts
    the items and their value; until then they count, so a `[cart]` route that never matches
    leaves the client's events, not a blind spot. A `purchase` is the browser's
    claim: returned (measured as unverified) but it moves no order, revenue or cart; orders come
    from the shop (`record_order`)."""
    session.last_seen = now
    if beacon.pv is not None and beacon.dwell is not None:
        credit_dwell(session, beacon.pv, beacon.dwell, now)
    counted = []
    for event in beacon.events:
        if event.type in ("add_to_cart", "remove_from_cart") and session.edge_cart_seen or event.type == "identify":
            continue
        if not _admitted(session, event):
            continue
        counted.append(event)
        if event.type == "add_to_cart":
            for item in event.items:
                if item.id in session.cart or len(session.cart) < MAX_CART_LINES:
                    session.cart[item.id] = min(session.cart.get(item.id, 0) + max(item.quantity, 1), 999)
            session.cart_value = min(session.cart_value + _cents(event.value), MAX_MONEY)
            session.cart_changed = now
            session.cart_source = CART_FROM_EVENTS
        elif event.type == "remove_from_cart":
            for item in event.items:
                left = session.cart.get(item.id, 0) - max(item.quantity, 1)
                if left > 0:
                    session.cart[item.id] = left
                else:
                    session.cart.pop(item.id, None)
            session.cart_value = 0 if not session.cart else max(0, session.cart_value - _cents(event.value))
            session.cart_changed = now
            session.cart_source = CART_FROM_EVENTS
        elif event.type == "begin_checkout":
            session.checkout_started = True
        elif event.type == "nudge_shown" and event.rule:
            _revealed(session, event.rule)
        elif event.type in ("nudge_dismissed", "nudge_clicked") and event.rule:
            if not session.served[key32(event.rule)].revealed:  # its reveal beacon is late or lost:
                _revealed(session, event.rule)  # the click says it was seen (an impression with it)
                counted.insert(len(counted) - 1, BeaconEvent("nudge_shown", rule=event.rule))
            close_rule(session, event.rule)
    return counted


def _revealed(session: Session, rule_id: str) -> None:
    key = key32(rule_id)
    served = session.served[key]
    served.owed -= 1
    served.revealed = True
    if key in session.shown or len(session.shown) < MAX_RULE_MARKS:
        session.shown[key] = sat(session.shown.get(key, 0) + 1)


def close_rule(session: Session, rule_id: str) -> None:
    """Marks a rule as done for this visit (clicked or dismissed): it will not show again."""
    key = key32(rule_id)
    if key not in session.closed:
        session.closed.append(key)
        del session.closed[:-MAX_RULE_MARKS]


def is_closed(session: Session, rule_id: str) -> bool:
    return key32(rule_id) in session.closed
