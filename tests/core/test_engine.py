"""The request-level flows, in plain Python: page plans, beacons, redemption."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from nudge.engine import Engine, PageRequest
from nudge.visitor.attributes import RequestContext
from nudge.visitor.cookies import parse_cookies
from nudge.visitor.purchases import ShopOrder
from nudge.visitor.session import Session
from nudge.visitor.tracking import is_closed

from .factories import NOW, make_app, repo_rule_files

APP = make_app()
JS_CART_APP = make_app({k: v for k, v in repo_rule_files().items() if k != "site.toml"})  # no cart endpoints
RULE = "sneakers-exit-intent"


def req(path: str, secure: bool = True) -> PageRequest:
    return PageRequest(RequestContext(path=path), secure=secure)


def cookie_value(set_cookie: str) -> tuple[str, str]:
    name, _, rest = set_cookie.partition("=")
    return name, rest.split(";")[0]


def visit(app: Engine, paths: list[str], dwell: int = 0) -> tuple[Session, str]:
    """Serves pages in order, as a browser would, carrying cookies; dwell is reported for the first."""
    jar: dict[str, str] = {}
    body = ""
    for i, path in enumerate(paths):
        s = app.load_session(jar, NOW + i)
        plan = app.plan_page(req(path), s, app.active_offer(jar, NOW + i), None, NOW + i)
        jar.update(cookie_value(c) for c in plan.set_cookies)
        if i == 0 and dwell:
            pv = json.loads(re.search(r'id="nudge-config">(.*?)</script>', plan.body_end).group(1))["pv"]  # type: ignore[union-attr]
            jar["nudge_dw"] = f"{pv}.{dwell}"
        body = plan.body_end
    return app.load_session(jar, NOW + len(paths)), body


PRODUCTS = [f"/collections/sneakers/products/p{i}" for i in range(3)]


def test_story_page_gets_the_hidden_modal_with_a_redeem_link() -> None:
    _, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    assert f'data-nudge-rule="{RULE}"' in body and " hidden>" in body
    assert "/_nudge/redeem?t=" in body
    config = json.loads(re.search(r'id="nudge-config">(.*?)</script>', body).group(1))  # type: ignore[union-attr]
    assert config["nudges"] == [{"rule": RULE, "kind": "modal", "trigger": "exit_intent", "value": 0,
                                 "minDwell": 0, "variant": 0, "counted": False}]


def test_before_thresholds_nothing_or_a_timed_modal() -> None:
    _, body = visit(APP, ["/collections/sneakers", *PRODUCTS[:2]], dwell=300)
    assert "nudge-modal" not in body
    _, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=60)
    assert '"minDwell":240' in body


def test_set_cookie_attributes() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(req("/"), s, None, None, NOW)
    assert plan.set_cookies[0].endswith("Path=/; Max-Age=34560000; SameSite=Lax; HttpOnly; Secure")
    plan = APP.plan_page(req("/", secure=False), s, None, None, NOW)
    assert "Secure" not in plan.set_cookies[0] and "HttpOnly" in plan.set_cookies[0]


def test_first_page_of_a_visit_writes_the_profile_once() -> None:
    s = Session.fresh(NOW, b"visitor1")
    written = APP.plan_page(req("/"), s, None, None, NOW).profile_write
    assert written is not None and written.visits == 1
    back = APP.load_session({"nudge": APP.codec.encode(s)}, NOW)
    assert APP.plan_page(req("/"), back, None, None, NOW).profile_write is None


def test_beacon_ok_and_bad() -> None:
    s = Session.fresh(NOW, b"visitor1")
    body = json.dumps({"events": [{"type": "add_to_cart", "items": [{"id": "a", "quantity": 1}]}]}).encode()
    reply, orders = JS_CART_APP.beacon("POST", body, "application/json", s, NOW, True)
    assert reply.status == 204 and not orders and s.cart == {"a": 1}
    # With cart endpoints watched at the edge the browser's events still count until the edge has
    # seen the cart this visit (a route that never matches must not leave nudge blind), then not.
    edge_counted = Session.fresh(NOW, b"visitor2")
    APP.beacon("POST", body, "application/json", edge_counted, NOW, True)
    assert edge_counted.cart == {"a": 1}
    edge_counted.edge_cart_seen = True
    APP.beacon("POST", body, "application/json", edge_counted, NOW + 1, True)
    assert edge_counted.cart == {"a": 1} and edge_counted.cart_changed == NOW
    assert reply.headers[0][0] == "Set-Cookie"
    before = APP.codec.encode(s)
    for method, data, ctype, status, reason in [
        ("GET", b"{}", "application/json", 405, "POST"),
        ("POST", b"{", "application/json", 400, "not JSON"),
        ("POST", b'{"events": [{"type": "nudge_shown", "rule": "nope"}]}', "application/json", 400, "unknown rule"),
    ]:
        reply, _ = APP.beacon(method, data, ctype, s, NOW, True)
        assert reply.status == status and reason in json.loads(reply.body)["error"]
        assert not any(h == "Set-Cookie" for h, _ in reply.headers)
    assert APP.codec.encode(s) == before  # untouched by the rejected beacons
    purchase = json.dumps({"events": [{"type": "purchase", "value": 99.5}]}).encode()
    event = APP.beacon("POST", purchase, "application/json", s, NOW, True)[1]
    # issue 15: a browser's purchase is measured as unverified and moves no order or revenue
    assert event.orders == 0 and event.revenue == 0 and s.orders == 0 and s.revenue == 0
    assert [(e.kind, e.revenue) for e in event.events] == [("conversion_unverified", 99.5)]
    # the shop's confirmed order (X-Nudge-Order) counts, once per order id
    bought = APP.order_seen(ShopOrder("NDG-1", 99.5), s, NOW, "https://shop.example")
    assert bought is not None and bought.orders == 1 and bought.revenue == 9950 and s.orders == 1
    assert [(e.kind, e.revenue) for e in bought.events] == [("conversion", 99.5)]
    assert APP.order_seen(ShopOrder("NDG-1", 99.5), s, NOW + 5) is None and s.orders == 1


def test_redeem_sets_offer_closes_rule_and_redirects_same_site() -> None:
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    href = unquote(re.search(r'href="/_nudge/redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    reply, event = APP.redeem(f"t={href}", session, NOW + 10, secure=True)
    assert reply.status == 303 and event.redeemed == 1
    headers = dict((k, v) for k, v in reply.headers if k != "Set-Cookie")
    assert headers["Location"] == "/collections/sneakers"
    cookies = dict(cookie_value(v) for k, v in reply.headers if k == "Set-Cookie")
    offer = APP.active_offer(cookies, NOW + 10)
    assert offer is not None and offer.percent == 10 and offer.category == "sneakers"
    assert APP.origin_headers(offer)["X-Nudge-Offer"].startswith("code=SNEAKERS10; percent=10")
    after = APP.load_session(cookies, NOW + 11)
    assert is_closed(after, RULE)
    _, body = visit(APP, ["/collections/sneakers"])
    assert "nudge-modal" not in body


def test_redeem_rejects_foreign_and_forged_tokens() -> None:
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    other = Session.fresh(NOW, b"someone")
    for query, who in [(f"t={token}", other), ("t=forged.token", session), ("", session), ("t=" + "A" * 600, session)]:
        reply, event = APP.redeem(query, who, NOW, secure=True)
        headers = dict(reply.headers)
        assert reply.status == 303 and not event and headers["Location"] == "/"
        assert headers["Set-Cookie"].startswith("nudge_msg=offer-expired;")  # no offer, a polite note


def test_our_cookies_are_parsed_leniently() -> None:
    assert parse_cookies('a=1; nudge="x.y"; bad; =v; a=2') == {"a": "1", "nudge": "x.y"}


def test_untracked_visitors_get_nudges_but_nothing_is_stored() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(req("/"), s, None, None, NOW, tracked=False, cookies={})
    assert plan.set_cookies == [] and plan.profile_write is None and '"track":false' in plan.body_end
    erase = APP.plan_page(req("/"), s, None, None, NOW, tracked=False, cookies={"nudge": "x", "nudge_dw": "1.2"})
    assert [c.split("=")[0] for c in erase.set_cookies] == ["nudge", "nudge_dw"]
    assert all("Max-Age=0" in c for c in erase.set_cookies)


def test_visitor_status_and_forget() -> None:
    from nudge.visitor.privacy import ConsentPolicy

    app = Engine(APP.ruleset, [b"k"], "", ConsentPolicy.from_config("opt-in", "consent"))
    assert app.visitor_status({"user-agent": "Googlebot/2.1"}, {}) == "automated"
    assert app.visitor_status({}, {}) == "untracked"
    assert app.visitor_status({}, {"consent": "granted"}) == "tracked"
    reply = app.forget("POST", {"nudge": "v", "other": "x"}, "abcd", True, secure=True)
    assert json.loads(reply.body) == {"erased": {"cookies": ["nudge"], "visitor": "abcd", "profile": True,
                                                 "identity_link": False}}
    assert app.forget("GET", {}, None, False, secure=True).status == 405


def test_an_offer_is_redeemed_once() -> None:
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    first, event = APP.redeem(f"t={token}", session, NOW + 10, secure=True)
    assert event.redeemed == 1
    cookies = dict(cookie_value(v) for k, v in first.headers if k == "Set-Cookie")
    active = APP.active_offer(cookies, NOW + 11)
    again, event = APP.redeem(f"t={token}", session, NOW + 12, secure=True, active=active)
    assert again.status == 303 and not event and not any(k == "Set-Cookie" for k, _ in again.headers)
    later, event = APP.redeem(f"t={token}", session, NOW + 13, secure=True, active=None)  # offer gone
    assert not event and dict(later.headers)["Set-Cookie"].startswith("nudge_msg=offer-used;")


def test_the_polite_message_shows_once_on_the_next_page() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(req("/"), s, None, None, NOW, cookies={"nudge_msg": "offer-expired"})
    assert "that offer link has expired" in plan.body_start
    assert any(c.startswith("nudge_msg=;") and "Max-Age=0" in c for c in plan.set_cookies)
    quiet = APP.plan_page(req("/"), s, None, None, NOW, cookies={"nudge_msg": "<script>"})
    assert "nudge-notice" not in quiet.body_start  # only known messages, never cookie text
