from __future__ import annotations

import pytest

from nudge.offer_apply import OfferShown, apply_location, apply_url_problem, offer_shown


@pytest.mark.parametrize("mode, confirmed, honoured, shown", [
    ("code", False, False, OfferShown("code", False)),
    ("code", True, True, OfferShown("code", False)),  # no header went out: a confirmation means nothing
    ("url", False, False, OfferShown("cart", False)),  # the platform's cart holds the code
    ("url", True, True, OfferShown("cart", False)),
    ("header", False, False, OfferShown("code", False)),  # the shop may not read it: the honest wording
    ("header", True, False, OfferShown("applied", False)),  # the shop priced this page itself
    ("header", True, True, OfferShown("applied", False)),  # ... and is never discounted twice
    ("header", False, True, OfferShown("applied", True)),  # the cart charges it: show it on marked prices
])
def test_only_a_cart_that_charges_the_discount_is_applied(mode: str, confirmed: bool, honoured: bool,
                                                          shown: OfferShown) -> None:
    assert offer_shown(mode, confirmed, honoured) == shown


def test_the_apply_url_percent_encodes_both_values() -> None:
    template = "/discount/{code}?redirect={redirect}"
    assert apply_location(template, "SNEAKERS10", "/collections/sneakers?sort=price&x=1") == (
        "/discount/SNEAKERS10?redirect=%2Fcollections%2Fsneakers%3Fsort%3Dprice%26x%3D1")
    assert apply_location("/cart?coupon={code}", "CART-7K3M", "/") == "/cart?coupon=CART-7K3M"
    assert apply_location("/{code}", "../admin", "/") == "/..%2Fadmin"  # never a path of its own


@pytest.mark.parametrize("template, problem", [
    ("/discount/{code}?redirect={redirect}", None),  # Shopify
    ("/?wc-apply-coupon={code}", None),
    ("/cart", "must contain {code}"),
    ("/discount/{coupon}", "unknown placeholder {coupon}"),
    ("/discount/{code}?r={redirect", "unbalanced"),
    ("https://shop.example/discount/{code}", "same-site path"),
    ("//evil.example/{code}", "same-site path"),
    ("{code}", "same-site path"),
    ("/discount/{code} now", "same-site path"),
])
def test_the_apply_url_stays_on_the_shop(template: str, problem: str | None) -> None:
    found = apply_url_problem(template)
    assert found == problem if problem is None else found is not None and problem in found
