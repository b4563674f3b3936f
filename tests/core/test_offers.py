from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nudge.offers import OfferTokens, Redeemed, next_midnight, offer_expiry
from nudge.signing import BadData, Signer

from .factories import NOW, repo_ruleset

RULE = repo_ruleset().rule("sneakers-exit-intent")
TOKENS = OfferTokens(Signer([b"k"], "offer-token"), Signer([b"k"], "offer-cookie"))


def test_token_is_bound_to_visitor_and_expires() -> None:
    assert RULE is not None
    token = TOKENS.mint(RULE, "v1", NOW)
    assert TOKENS.verify(token, "v1", NOW + 10) == RULE.id
    with pytest.raises(BadData, match="another visitor"):
        TOKENS.verify(token, "v2", NOW)
    with pytest.raises(BadData, match="expired"):
        TOKENS.verify(token, "v1", NOW + 3601)
    with pytest.raises(BadData):
        TOKENS.verify(token[:-2], "v1", NOW)


def test_cookie_round_trip_and_expiry() -> None:
    r = Redeemed("rule", "SNEAKERS10", 10, "sneakers", NOW + 100)
    value = TOKENS.cookie(r)
    assert TOKENS.from_cookie(value, NOW) == r
    assert TOKENS.from_cookie(value, NOW + 100) is None
    assert TOKENS.from_cookie(value + "x", NOW) is None
    assert TOKENS.from_cookie(TOKENS.mint(RULE, "v", NOW), NOW) is None  # a token is not a cookie
    assert r.header_value() == f"code=SNEAKERS10; percent=10; category=sneakers; expires={NOW + 100}"


def test_today_only_ends_at_local_midnight() -> None:
    tz = ZoneInfo("America/New_York")
    noon = int(datetime(2026, 11, 23, 12, 0, tzinfo=tz).timestamp())
    assert next_midnight(noon, "America/New_York") == int(datetime(2026, 11, 24, tzinfo=tz).timestamp())
    assert next_midnight(noon, "Not/AZone") == int(datetime(2026, 11, 24, tzinfo=ZoneInfo("UTC")).timestamp())
    assert RULE is not None and RULE.offer is not None
    assert offer_expiry(RULE.offer, noon) == noon + 12 * 3600


def test_amount_offers_travel_in_the_header_and_cookie() -> None:
    r = Redeemed("rule", "FIVE", 0, "boots", NOW + 100, 5.0)
    assert r.header_value() == f"code=FIVE; amount=5.00; category=boots; expires={NOW + 100}"
    assert TOKENS.from_cookie(TOKENS.cookie(r), NOW) == r and r.describe == "5.00 off"


@pytest.mark.parametrize("fields", [
    [None, None, None, None, True],  # found by fuzzing: percent None reached the price arithmetic
    ["r", "C", 10, "c", NOW + 100, "five"],  # an amount header_value could not format
    ["r", "C", 10, "c", NOW + 100, float("nan")],
    ["r", "C", True, "c", NOW + 100],
    ["r", "C", 10, "c", True],
    ["r", "C", 10, "c"],
    {"rule": "r"},
])
def test_a_signed_cookie_of_another_shape_is_no_offer(fields: object) -> None:
    import msgpack

    assert TOKENS.from_cookie(Signer([b"k"], "offer-cookie").sign(msgpack.packb(fields)), 0) is None
