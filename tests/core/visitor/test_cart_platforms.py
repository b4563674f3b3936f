"""Recorded cart requests of real shop platforms (tests/data/cart/*.json), replayed through the
`[cart]` config each platform's recipe uses: the changes nudge reads, and the shop's cart JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from nudge.rules.load import load_ruleset
from nudge.visitor.cart import CartChange, cart_changes
from nudge.visitor.cart_routes import CartEndpoints, match_route
from nudge.visitor.cart_truth import CartTruth, apply_cart_truth, cart_seen, parse_cart_json
from nudge.visitor.session import CART_FROM_EDGE, MAX_CART_LINES, Session
from tests.core.factories import NOW, repo_rule_files, session

DATA = Path(__file__).resolve().parents[2] / "data" / "cart"
PLATFORMS = {p.stem: json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))}
CASES = [(name, r) for name, data in PLATFORMS.items() for r in data["requests"]]


def platform_cart(name: str) -> CartEndpoints:
    files = repo_rule_files() | {"site.toml": PLATFORMS[name]["site_toml"]}
    cart = load_ruleset(files).cart
    assert cart is not None
    return cart


def test_every_platform_is_recorded() -> None:
    assert set(PLATFORMS) == {"shopify", "woocommerce", "oscar"}


@pytest.mark.parametrize(("platform", "request_"), CASES, ids=[f"{n}: {r['name']}" for n, r in CASES])
def test_recorded_request(platform: str, request_: dict[str, Any]) -> None:
    cart = platform_cart(platform)
    url = urlsplit(request_["url"])
    match = match_route(cart, request_["method"], url.path, url.query)
    if request_["expect"] is None:
        assert match is None
        return
    assert match is not None
    changes = cart_changes(cart, match, request_["body"].encode(), request_["content_type"])
    assert changes == [CartChange(*e) for e in request_["expect"]]


def test_shopify_cart_json_is_the_truth() -> None:
    cart = platform_cart("shopify")
    assert cart.truth is not None
    recorded = PLATFORMS["shopify"]["truth"]
    truth = parse_cart_json(cart.truth, json.dumps(recorded["body"]).encode())
    assert truth == CartTruth(**recorded["expect"])


def test_shopify_change_we_cannot_read_still_asks_the_shop() -> None:
    """A cart request whose body names no item (`line`, `updates`) is still a cart change: the
    edge reads `/cart.js`, whose figures then replace the inferred ones."""
    cart = platform_cart("shopify")
    s = session()
    match = match_route(cart, "POST", "/cart/change.js", "")
    assert match is not None
    seen = cart_seen(s, cart, match, b'{"line": 1, "quantity": 2}', "application/json", 200, None, NOW,
                     lambda item: None)
    assert not seen.touched and seen.read_truth == cart.truth
    truth = parse_cart_json(cart.truth, json.dumps(PLATFORMS["shopify"]["truth"]["body"]).encode())
    assert truth is not None
    apply_cart_truth(s, truth, NOW)
    assert s.cart_items == 3 and s.cart_value == 25800 and s.edge_cart_seen


def test_refused_cart_request_changes_nothing() -> None:
    cart = platform_cart("oscar")
    s = session()
    match = match_route(cart, "POST", "/basket/add/7/", "")
    seen = cart_seen(s, cart, match, b"quantity=2", "application/x-www-form-urlencoded", 403, None, NOW,
                     lambda item: None)
    assert seen == type(seen)(False, None) and s.cart == {} and not s.edge_cart_seen


def oscar_request(s: Session, path: str, body: bytes, price_of: Callable[[str], float | None]) -> None:
    cart = platform_cart("oscar")
    match = match_route(cart, "POST", path, "")
    assert match is not None
    assert cart_seen(s, cart, match, body, "application/x-www-form-urlencoded", 302, None, NOW, price_of).touched


def basket_formset(*lines: tuple[int, int, bool]) -> bytes:
    """Oscar's basket form as a browser posts it: the management form and every line (line id,
    quantity, its hidden DELETE box ticked by the "Remove" link)."""
    fields = [("csrfmiddlewaretoken", "t"), ("form-TOTAL_FORMS", str(len(lines))),
              ("form-INITIAL_FORMS", str(len(lines))), ("form-MIN_NUM_FORMS", "0"), ("form-MAX_NUM_FORMS", "1000")]
    for n, (line, quantity, delete) in enumerate(lines):
        fields += [(f"form-{n}-quantity", str(quantity)), (f"form-{n}-id", str(line))]
        fields += [(f"form-{n}-DELETE", "on")] if delete else []
    return urlencode(fields).encode()


def test_oscar_visit() -> None:
    """Add with the product in the path (Oscar's product pk), then the basket formset, which names
    basket LINES (ids unrelated to products) and lists all of them: it replaces the cart's lines,
    so the counts stay the basket's."""
    s = session()
    prices = {"3": 110.0, "5": 55.0, "1": 999.0}  # "1" is also a line id below: never priced as one
    oscar_request(s, "/basket/add/3/", b"csrfmiddlewaretoken=t&quantity=1", prices.get)
    oscar_request(s, "/basket/add/5/", b"csrfmiddlewaretoken=t&quantity=2", prices.get)
    assert s.cart == {"3": 1, "5": 2} and s.cart_value == 22000
    oscar_request(s, "/basket/", basket_formset((1, 2, False), (2, 2, False)), prices.get)
    assert s.cart == {"1": 2, "2": 2} and s.cart_items == 4  # not 7: the lines are replaced
    assert s.cart_value == round(4 * 22000 / 3)  # the average item price before
    oscar_request(s, "/basket/", basket_formset((1, 2, False), (2, 2, True)), prices.get)  # "Remove"
    assert s.cart == {"1": 2} and s.cart_items == 2 and s.cart_value == round(round(4 * 22000 / 3) / 2)
    oscar_request(s, "/basket/add/5/", b"csrfmiddlewaretoken=t&quantity=1", prices.get)
    assert s.cart_items == 3 and s.cart_source == CART_FROM_EDGE
    oscar_request(s, "/basket/", basket_formset((1, 0, False), (3, 1, False)), prices.get)
    assert s.cart == {"3": 1}
    oscar_request(s, "/basket/", basket_formset(), prices.get)  # the whole formset of an empty basket
    assert s.cart == {} and s.cart_value == 0
    cart_seen(s, platform_cart("oscar"), None, None, None, 200, "items=5; value=645.00", NOW, lambda item: None)
    assert s.cart_items == 5 and s.cart_value == 64500


@pytest.mark.parametrize(
    ("path", "body", "cart"),
    [
        ("/basket/", b"form-0-id=1&form-0-quantity=4", {"p": 2, "1": 4}),  # no management form: one line set
        ("/basket/", b"form-0-id=1&form-0-quantity=4&form-0-DELETE=on", {"p": 2}),
        ("/basket/", b"form-0-id=1&form-0-quantity=4&form-0-DELETE=false&form-TOTAL_FORMS=1", {"1": 4}),
        ("/basket/", b"form-0-id=1&form-0-quantity=4&form-0-DELETE=&form-TOTAL_FORMS=1", {"1": 4}),
        ("/basket/", b"form-0-id=1&form-0-quantity=4&other-TOTAL_FORMS=1", {"p": 2, "1": 4}),  # another formset
        ("/basket/add/9/", b"quantity=1&form-TOTAL_FORMS=0", {"p": 2, "9": 1}),  # only a change route replaces
    ],
)
def test_only_a_whole_formset_on_a_change_route_replaces_the_cart(path: str, body: bytes, cart: dict[str, int]) -> None:
    s = session()
    s.cart = {"p": 2}
    oscar_request(s, path, body, lambda item: None)
    assert s.cart == cart


def test_a_whole_formset_keeps_the_cart_bounded() -> None:
    s = session()
    oscar_request(s, "/basket/", basket_formset(*[(i, 1, False) for i in range(30)]), lambda item: None)
    assert len(s.cart) == MAX_CART_LINES
