"""POST /_nudge/beacon and the shop's confirmed orders through the engine (the beacon's parsing is
in visitor/test_beacon.py, what tracking admits in visitor/test_trust.py)."""

from __future__ import annotations

import json

from nudge.engine import KeyEvent, Reply
from nudge.visit_reports import profile_after
from nudge.visitor.profile import Profile
from nudge.visitor.purchases import ShopOrder
from nudge.visitor.session import Session

from .factories import NOW, PRODUCTS, cookie_value, make_app, post_beacon, repo_rule_files, visit

APP = make_app()
JS_CART_APP = make_app({k: v for k, v in repo_rule_files().items() if k != "site.toml"})  # no cart endpoints


def test_beacon_ok_and_bad() -> None:
    s = Session.fresh(NOW, b"visitor1")
    body = json.dumps({"events": [{"type": "add_to_cart", "items": [{"id": "a", "quantity": 1}]}]}).encode()
    reply, orders = post_beacon(JS_CART_APP, body, s, NOW)
    assert reply.status == 204 and not orders and s.cart == {"a": 1}
    # With cart endpoints watched at the edge the browser's events still count until the edge has
    # seen the cart this visit (a route that never matches must not leave nudge blind), then not.
    edge_counted = Session.fresh(NOW, b"visitor2")
    post_beacon(APP, body, edge_counted, NOW)
    assert edge_counted.cart == {"a": 1}
    edge_counted.edge_cart_seen = True
    post_beacon(APP, body, edge_counted, NOW + 1)
    assert edge_counted.cart == {"a": 1} and edge_counted.cart_changed == NOW
    assert reply.headers[0][0] == "Set-Cookie"
    before = APP.codec.encode(s)
    for method, data, ctype, status, reason in [
        ("GET", b"{}", "application/json", 405, "POST"),
        ("POST", b"{", "application/json", 400, "not JSON"),
        ("POST", b'{"events": [{"type": "nudge_shown", "rule": "nope"}]}', "application/json", 400, "unknown rule"),
    ]:
        refused = APP.read_beacon(method, data, ctype)
        assert isinstance(refused, Reply)
        reply = refused
        assert reply.status == status and reason in json.loads(reply.body)["error"]
        assert not any(h == "Set-Cookie" for h, _ in reply.headers)
    assert APP.codec.encode(s) == before  # untouched by the rejected beacons
    purchase = json.dumps({"events": [{"type": "purchase", "value": 99.5}]}).encode()
    event = post_beacon(APP, purchase, s, NOW)[1]
    # issue 15: a browser's purchase is measured as unverified and moves no order or revenue
    assert event.orders == 0 and event.revenue == 0 and s.orders == 0 and s.revenue == 0
    assert [(e.kind, e.revenue) for e in event.events] == [("conversion_unverified", 99.5)]
    # the shop's confirmed order (X-Nudge-Order) counts, once per order id
    bought = APP.order_seen(ShopOrder("NDG-1", 99.5), s, NOW, "https://shop.example")
    assert bought is not None and bought.orders == 1 and bought.revenue == 9950 and s.orders == 1
    assert [(e.kind, e.revenue) for e in bought.events] == [("conversion", 99.5)]
    assert APP.order_seen(ShopOrder("NDG-1", 99.5), s, NOW + 5) is None and s.orders == 1


def test_a_beacon_that_begins_a_visit_counts_it_and_the_visit_that_ended() -> None:
    """A tab left open past 30 idle minutes: the beacon (a tab switch, a reveal) is the new visit's
    first request. Its answer stores the new session, so no page will be the visit's first: the
    beacon's key event counts the visit, and folds in the interest of the one that ended."""
    ended, _ = visit(APP, ["/collections/sneakers", *PRODUCTS])
    later = NOW + 3600
    returning = APP.load_session({"nudge": APP.codec.encode(ended)}, later)
    reply, event = post_beacon(APP, b'{"pv": 1, "dwell": 5}', returning, later)
    assert event and event.began_visit is returning and returning.ended is not None
    stored = Profile(visits=3, orders=1, first_seen=NOW - 86_400, last_seen=NOW - 3600)
    profile = profile_after(stored, event, later)
    assert (profile.visits, profile.orders, profile.last_seen) == (4, 1, later)
    assert profile.affinity["sneakers"] > 0  # the ended visit's views and products
    jar = dict(cookie_value(v) for k, v in reply.headers if k == "Set-Cookie")
    _, same_visit = post_beacon(APP, b'{"pv": 1, "dwell": 7}', APP.load_session(jar, later + 5), later + 5)
    assert not same_visit and profile_after(profile, same_visit, later + 5).visits == 4


def test_a_beacon_without_a_session_cookie_counts_no_visit() -> None:
    """A browser that keeps no cookie (a page gave it one): counting its beacons would write a
    profile for a visitor id no request will carry again."""
    _, event = post_beacon(APP, b'{"pv": 1, "dwell": 5}', Session.fresh(NOW), NOW)
    assert not event and profile_after(None, KeyEvent(), NOW).visits == 0
