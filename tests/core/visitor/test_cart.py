from __future__ import annotations

import json

import pytest

from nudge.visitor.cart import CartChange, apply_cart_change, cart_action, parse_cart_body
from nudge.rules.model import CartEndpoints

from tests.core.factories import NOW, repo_ruleset, session

CART = repo_ruleset().cart
FORM = "application/x-www-form-urlencoded"


def test_repo_site_config() -> None:
    assert CART == CartEndpoints("/cart/add", "/cart/remove", "sku", "qty")


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [("POST", "/cart/add", "add"), ("POST", "/cart/remove", "remove"), ("GET", "/cart/add", None),
     ("POST", "/cart/add/x", None), ("POST", "/cart", None)],
)
def test_cart_action(method: str, path: str, action: str | None) -> None:
    assert cart_action(CART, method, path) == action
    assert cart_action(None, method, path) is None


@pytest.mark.parametrize(
    ("body", "ctype", "change"),
    [
        (b"sku=SNK-001&qty=2", FORM, CartChange("add", "SNK-001", 2)),
        (b"sku=SNK-001", FORM, CartChange("add", "SNK-001", 1)),
        (json.dumps({"sku": "SNK-002", "qty": 3}).encode(), "application/json; charset=utf-8", CartChange("add", "SNK-002", 3)),
        (b"sku=SNK-001&qty=0", FORM, None),
        (b"sku=SNK-001&qty=lots", FORM, None),
        (b"sku=%3Cscript%3E&qty=1", FORM, None),
        (b"qty=1", FORM, None),
        (b"[1,2]", "application/json", None),
        (b"{", "application/json", None),
        (b"sku=A&qty=1", "multipart/form-data; boundary=x", None),
        (b"\xff\xfe", FORM, None),
        (b"sku=A&qty=1" + b"&x=1" * 5000, FORM, None),
    ],
)
def test_parse_cart_body(body: bytes, ctype: str, change: CartChange | None) -> None:
    assert CART is not None
    assert parse_cart_body(CART, "add", body, ctype) == change


def test_cart_value_follows_known_prices() -> None:
    s = session()
    apply_cart_change(s, CartChange("add", "a", 2), NOW, 19.99)
    apply_cart_change(s, CartChange("add", "b", 1), NOW)  # price unknown: items count, value does not
    assert s.cart_items == 3 and s.cart_value == 3998
    apply_cart_change(s, CartChange("remove", "a", 1), NOW, 19.99)
    assert s.cart_value == 1999


def test_apply_cart_change() -> None:
    s = session()
    apply_cart_change(s, CartChange("add", "a", 2), NOW)
    apply_cart_change(s, CartChange("add", "a", 1), NOW)
    assert s.cart == {"a": 3} and s.cart_changed == NOW
    s.cart_value = 5000
    apply_cart_change(s, CartChange("remove", "a", 3), NOW + 5)
    assert s.cart == {} and s.cart_value == 0 and s.cart_changed == NOW + 5
