from __future__ import annotations

import pytest

from nudge.signing import Signer
from nudge.visitor.cart import CartChange, apply_cart_change
from nudge.visitor.cart_routes import CartTruthSource
from nudge.visitor.cart_truth import (
    CartTruth,
    apply_cart_truth,
    cart_explained,
    cookie_for_truth,
    parse_cart_header,
    parse_cart_json,
)
from nudge.visitor.session import (
    CART_FROM_EDGE,
    CART_FROM_SHOP,
    UNNAMED_LINE,
    VISIT_TIMEOUT,
    SessionCodec,
    _to_wire,
)
from tests.core.factories import NOW, session


@pytest.mark.parametrize(
    ("header", "truth"),
    [
        ("items=3; value=129.00", CartTruth(3, 129.0)),
        ("Items = 0 ;Value=0", CartTruth(0, 0.0)),
        ("items=2", CartTruth(2, None)),
        ("value=5; items=1; currency=EUR", CartTruth(1, 5.0)),
        ("items=2; value=12.345", CartTruth(2, 12.35)),
        ("items=-1", None),
        ("items=1.5", None),
        ("items=10000", None),
        ("items=two", None),
        ("items=1; value=-3", None),
        ("items=1; value=1e9", None),
        ("value=3", None),
        ("", None),
        (None, None),
        ("items=1;" + "x" * 300, None),
    ],
)
def test_parse_cart_header(header: str | None, truth: CartTruth | None) -> None:
    assert parse_cart_header(header) == truth


SHOPIFY = CartTruthSource("/cart.js", "item_count", "total_price", 0.01)


@pytest.mark.parametrize(
    ("source", "body", "truth"),
    [
        (SHOPIFY, b'{"item_count": 3, "total_price": 25800}', CartTruth(3, 258.0)),
        (SHOPIFY, b'{"item_count": 0, "total_price": 0, "items": []}', CartTruth(0, 0.0)),
        (SHOPIFY, b'{"item_count": 3}', None),  # the value is configured: it must be there
        (SHOPIFY, b'{"item_count": "3", "total_price": "25800"}', CartTruth(3, 258.0)),
        (SHOPIFY, b'[3]', None),
        (SHOPIFY, b'<html>login</html>', None),
        (SHOPIFY, None, None),
        (CartTruthSource("/wp-json/wc/store/v1/cart", "items_count", "totals.total_price", 0.01),
         b'{"items_count": 2, "totals": {"total_price": "4200", "currency_minor_unit": 2}}', CartTruth(2, 42.0)),
        (CartTruthSource("/basket.json", "lines.0.count", None, 1.0), b'{"lines": [{"count": 4}]}', CartTruth(4, None)),
    ],
)
def test_parse_cart_json(source: CartTruthSource, body: bytes | None, truth: CartTruth | None) -> None:
    assert parse_cart_json(source, body) == truth


def test_the_shops_count_wins_and_the_map_agrees() -> None:
    s = session()
    apply_cart_change(s, CartChange("add", "a", 2), NOW)
    apply_cart_change(s, CartChange("add", "b", 1), NOW)
    # The shop has more than nudge saw: the rest is one unnamed line.
    assert apply_cart_truth(s, CartTruth(5, 80.0), NOW + 1)
    assert s.cart == {"a": 2, "b": 1, UNNAMED_LINE: 2} and s.cart_items == 5 and s.cart_value == 8000
    assert s.cart_source == CART_FROM_SHOP and s.cart_changed == NOW + 1
    # Fewer: the unnamed rest goes first, then the oldest lines.
    apply_cart_truth(s, CartTruth(2, None), NOW + 2)
    assert s.cart == {"a": 1, "b": 1}
    assert s.cart_items == 2 and s.cart_value == 8000  # no value given: it stays
    # The same figures again: nothing changed, so the cart's age is kept.
    assert not apply_cart_truth(s, CartTruth(2, 80.0), NOW + 3)
    assert s.cart_changed == NOW + 2
    assert apply_cart_truth(s, CartTruth(0, None), NOW + 4)
    assert s.cart == {} and s.cart_value == 0


def test_oldest_lines_give_way_first() -> None:
    s = session()
    for item in "abc":
        apply_cart_change(s, CartChange("add", item, 2), NOW)
    apply_cart_truth(s, CartTruth(3, None), NOW)
    assert s.cart == {"b": 1, "c": 2}


def test_unnamed_line_fits_in_a_full_cart() -> None:
    s = session()
    for i in range(20):
        apply_cart_change(s, CartChange("add", f"i{i}", 1), NOW)
    apply_cart_truth(s, CartTruth(25, None), NOW)
    assert len(s.cart) == 20 and s.cart_items == 25 and "i0" not in s.cart and s.cart[UNNAMED_LINE] == 6


def test_cookie_for_truth() -> None:
    assert cookie_for_truth("cart=old; theme=dark", ["cart=new; Path=/; HttpOnly", "cart_sig=s1; Path=/"]) \
        == "cart=new; theme=dark; cart_sig=s1"
    assert cookie_for_truth("a=1; b=2", ["a=; Max-Age=0", "b=3; Max-Age = 0"]) == ""
    assert cookie_for_truth(None, []) == ""
    assert cookie_for_truth("junk; c=3", ["=x", "novalue"]) == "c=3"


def test_cart_source_survives_the_cookie_and_old_cookies_still_read() -> None:
    codec = SessionCodec(Signer([b"k" * 32], "session"))
    s = session()
    assert len(_to_wire(s)) == 22  # no cart source yet: the layout older code reads
    apply_cart_truth(s, CartTruth(2, 10.0), NOW)
    back = codec.decode(codec.encode(s))
    assert (back.cart, back.cart_source, back.edge_cart_seen) == ({UNNAMED_LINE: 2}, CART_FROM_SHOP, True)
    # The next visit keeps the cart and where it came from, but the browser's events count again
    # until the edge sees the cart in this visit.
    later = codec.load(codec.encode(back), NOW + VISIT_TIMEOUT + 1)
    assert later.cart == {UNNAMED_LINE: 2} and later.cart_source == CART_FROM_SHOP and not later.edge_cart_seen


def test_explain_says_where_the_cart_comes_from() -> None:
    s = session()
    assert cart_explained(s, 0, None)["source"] == "nothing yet"
    apply_cart_change(s, CartChange("add", "a", 1), NOW)
    said = cart_explained(s, 3, "/cart.js")
    assert s.cart_source == CART_FROM_EDGE
    assert said["source"].startswith("cart requests seen at the edge") and said["edge_routes"] == 3
    assert said["client_events"].startswith("ignored") and said["truth_url"] == "/cart.js"
