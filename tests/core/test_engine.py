"""The page flow through the engine, in plain Python: what pages show and set across a visit, for
tracked and untracked visitors (beacons: test_visit_reports.py; redemption: test_redemption.py)."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from nudge.engine import Engine
from nudge.followups.messages import IssuedCode
from nudge.isolate_memory import IsolateMemory
from nudge.rules.load import load_ruleset
from nudge.visitor.cookies import parse_cookies
from nudge.visitor.session import Session

from .factories import NOW, PRODUCTS, RULE, cookie_value, make_app, repo_rule_files, req, visit

APP = make_app()


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
    plan = APP.plan_page(IsolateMemory(), req("/"), s, None, None, NOW)
    assert plan.set_cookies[0].endswith("Path=/; Max-Age=34560000; SameSite=Lax; HttpOnly; Secure")
    plan = APP.plan_page(IsolateMemory(), req("/", secure=False), s, None, None, NOW)
    assert "Secure" not in plan.set_cookies[0] and "HttpOnly" in plan.set_cookies[0]


def test_first_page_of_a_visit_writes_the_profile_once() -> None:
    s = Session.fresh(NOW, b"visitor1")
    written = APP.plan_page(IsolateMemory(), req("/"), s, None, None, NOW).profile_write
    assert written is not None and written.visits == 1
    back = APP.load_session({"nudge": APP.codec.encode(s)}, NOW)
    assert APP.plan_page(IsolateMemory(), req("/"), back, None, None, NOW).profile_write is None


def test_our_cookies_are_parsed_leniently() -> None:
    assert parse_cookies('a=1; nudge="x.y"; bad; =v; a=2') == {"a": "1", "nudge": "x.y"}


def test_untracked_visitors_get_nudges_but_nothing_is_stored() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(IsolateMemory(), req("/"), s, None, None, NOW, tracked=False, cookies={})
    assert plan.set_cookies == [] and plan.profile_write is None and '"track":false' in plan.body_end
    erase = APP.plan_page(IsolateMemory(), req("/"), s, None, None, NOW, tracked=False,
                          cookies={"nudge": "x", "nudge_dw": "1.2"})
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


def test_newly_published_rules_make_a_new_engine_with_the_same_configuration() -> None:
    from nudge.visitor.privacy import ConsentPolicy

    consent = ConsentPolicy.from_config("opt-in", "consent")
    app = Engine(APP.ruleset, [b"new", b"old"], "/* client */", consent, True, "v1", True, "qa",
                 followups_enabled=True, shop_secret=b"shop")
    no_cart = load_ruleset({k: v for k, v in repo_rule_files().items() if k != "site.toml"})
    later = app.with_ruleset(no_cart, "v2")
    assert later.ruleset is no_cart and later.rules_version == "v2" and later.cart is None
    assert app.ruleset is APP.ruleset and app.rules_version == "v1" and app.cart is not None  # a request keeps it
    s = Session.fresh(NOW, b"visitor1")  # what one engine signed, the other reads
    assert later.load_session({"nudge": app.codec.encode(s)}, NOW).visitor_id == s.visitor_id
    rule = APP.ruleset.rule(RULE)
    assert rule is not None and later.offers.verify(app.offers.mint(rule, s.visitor_id, NOW), s.visitor_id, NOW) == RULE
    assert later.identity_of("c-1") == app.identity_of("c-1") and later.order_key("o-1") == app.order_key("o-1")
    assert (later.code_secret, later.ledger_secret) == (app.code_secret, app.ledger_secret)
    assert (later.consent, later.shadow, later.explain_token, later.followups_enabled, later.shop_secret) == (
        consent, True, "qa", True, b"shop")
    assert (later.client_js, later.client_src, later.style_href) == (app.client_js, app.client_src, app.style_href)
    assert app.with_ruleset(APP.ruleset, "v3").cart is not None  # the edge cart setting stays too
    off = Engine(APP.ruleset, [b"k"], "", edge_cart=False).with_ruleset(APP.ruleset, "v2")
    assert off.cart is None


def test_the_polite_message_shows_once_on_the_next_page() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(IsolateMemory(), req("/"), s, None, None, NOW, cookies={"nudge_msg": "offer-expired"})
    assert "that offer link has expired" in plan.body_start
    assert any(c.startswith("nudge_msg=;") and "Max-Age=0" in c for c in plan.set_cookies)
    quiet = APP.plan_page(IsolateMemory(), req("/"), s, None, None, NOW, cookies={"nudge_msg": "<script>"})
    assert "nudge-notice" not in quiet.body_start  # only known messages, never cookie text


# -- how the cart gets the offer (offer_apply.py) ---------------------------------------------------

SHOPIFY_URL = '\noffer_apply_url = "/discount/{code}?redirect={redirect}"\n'


def app_applying(shop: str, offer: str = "") -> Engine:
    """The repo's rules with `[shop]` lines for offers instead of the demo's, and `offer` lines
    added to the story's [offer]."""
    files = repo_rule_files()
    files["site.toml"] = files["site.toml"].replace('offer_apply = "header"', shop)
    files["sneakers-exit-intent.toml"] = files["sneakers-exit-intent.toml"].replace(
        'timezone = "America/New_York"', f'timezone = "America/New_York"\n{offer}')
    return make_app(files)


def redeemed(app: Engine) -> tuple[dict[str, str], str, str]:
    """(cookies after the button, where it sent the shopper, where a second click sends them)."""
    session, body = visit(app, ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    first, event = app.redeem(IsolateMemory(), f"t={token}", session, NOW + 10, secure=True)
    assert first.status == 303 and event.redeemed == 1
    cookies = dict(cookie_value(v) for k, v in first.headers if k == "Set-Cookie")
    again, _ = app.redeem(IsolateMemory(), f"t={token}", session, NOW + 11, secure=True,
                          active=app.active_offer(cookies, NOW + 11))
    return cookies, dict(first.headers)["Location"], dict(again.headers)["Location"]


def offer_page(app: Engine, cookies: dict[str, str], confirmed: bool = False) -> tuple[str, bool]:
    """(the banner area of the sneakers page, whether nudge rewrites its marked prices)."""
    plan = app.plan_page(IsolateMemory(), req("/collections/sneakers"), app.load_session(cookies, NOW + 20),
                         app.active_offer(cookies, NOW + 20), None, NOW + 20, cookies=cookies,
                         offer_confirmed=confirmed)
    return plan.body_start, plan.prices is not None


def test_by_default_the_shopper_is_told_the_code_and_nothing_is_applied() -> None:
    app = app_applying("")
    cookies, landing, again = redeemed(app)
    assert landing == again == "/collections/sneakers"
    offer = app.active_offer(cookies, NOW + 20)
    assert offer is not None and app.origin_headers(offer) == {}  # the cart gets the code, not a header
    for confirmed in (False, True):  # no header went out: a confirmation cannot be about it
        banner, rewrites = offer_page(app, cookies, confirmed)
        assert "10% off sneakers: use code <strong>SNEAKERS10</strong> at checkout" in banner
        assert "applied" not in banner and not rewrites


def test_an_offer_by_url_goes_through_the_platforms_own_apply_link() -> None:
    app = app_applying('offer_apply = "url"' + SHOPIFY_URL)
    cookies, landing, again = redeemed(app)
    assert landing == again == "/discount/SNEAKERS10?redirect=%2Fcollections%2Fsneakers"
    offer = app.active_offer(cookies, NOW + 20)
    assert offer is not None and app.origin_headers(offer) == {}
    banner, rewrites = offer_page(app, cookies)
    assert "code <strong>SNEAKERS10</strong> added to your cart" in banner and not rewrites
    # a follow-up's single-use code goes the same way, encoded
    issued = IssuedCode("CART-7K3M", "cart-abandoned-email", "v", 10, None, "sneakers", "/cart", NOW + 99)
    reply, event = app.redeem_code(issued, Session.fresh(NOW, b"other"), NOW, secure=True)
    assert event.redeemed == 1 and dict(reply.headers)["Location"] == "/discount/CART-7K3M?redirect=%2Fcart"


def test_an_offers_own_apply_wins_over_the_sites() -> None:
    app = app_applying('offer_apply = "url"' + SHOPIFY_URL, 'apply = "code"')
    cookies, landing, _ = redeemed(app)
    banner, _ = offer_page(app, cookies)
    assert landing == "/collections/sneakers" and "at checkout" in banner


def test_a_header_offer_is_applied_only_where_the_shop_confirms_it() -> None:
    cookies, landing, _ = redeemed(APP)  # the demo's rules: apply = "header", confirmed per page
    offer = APP.active_offer(cookies, NOW + 20)
    assert landing == "/collections/sneakers" and offer is not None
    assert APP.origin_headers(offer)["X-Nudge-Offer"].startswith("code=SNEAKERS10; percent=10")
    banner, rewrites = offer_page(APP, cookies)  # the shop did not say it priced this page
    assert "use code <strong>SNEAKERS10</strong> at checkout" in banner and "applied" not in banner
    assert not rewrites
    banner, rewrites = offer_page(APP, cookies, confirmed=True)  # it did: its prices are the offer's
    assert 'id="nudge-offer-applied"' in banner and "10% off sneakers applied" in banner and not rewrites


def test_a_cart_that_honours_the_header_gets_its_marked_prices_rewritten() -> None:
    app = app_applying('offer_apply = "header"\noffer_header = "honoured"')
    cookies, _, _ = redeemed(app)
    banner, rewrites = offer_page(app, cookies)
    assert "10% off sneakers applied" in banner and rewrites
    banner, rewrites = offer_page(app, cookies, confirmed=True)  # priced by the shop: never twice
    assert "10% off sneakers applied" in banner and not rewrites
