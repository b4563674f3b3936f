"""Recorded cart requests of real shop platforms (tests/data/cart/*.json), replayed through the
`[cart]` config each platform's recipe uses: the changes nudge reads, and the shop's cart JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from nudge.rules.load import load_ruleset
from nudge.visitor.cart import CartChange, cart_changes
from nudge.visitor.cart_routes import CartEndpoints, match_route
from nudge.visitor.cart_truth import CartTruth, apply_cart_truth, cart_seen, parse_cart_json
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


def test_oscar_visit() -> None:
    """Add with the product in the path, then the basket formset sets quantities (Oscar's formset
    names basket lines: without the shop's truth, its line ids are separate cart lines)."""
    cart = platform_cart("oscar")
    s = session()
    for method, path, body in [("POST", "/basket/add/7/", b"csrfmiddlewaretoken=t&quantity=2"),
                               ("POST", "/basket/add/9/", b"csrfmiddlewaretoken=t&quantity=1"),
                               ("POST", "/basket/", b"form-0-id=7&form-0-quantity=3&form-1-id=9&form-1-quantity=0")]:
        match = match_route(cart, method, path, "")
        seen = cart_seen(s, cart, match, body, "application/x-www-form-urlencoded", 302, None, NOW,
                         lambda item: 129.0)
        assert seen.touched
    assert s.cart == {"7": 3} and s.cart_value == 3 * 12900
    cart_seen(s, cart, None, None, None, 200, "items=5; value=645.00", NOW, lambda item: None)
    assert s.cart_items == 5 and s.cart_value == 64500
