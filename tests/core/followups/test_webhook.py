"""The follow-up webhook: single-use codes, the body, its signature, delivery outcomes and backoff,
and the cart lines and suggestions it carries (followups/webhook.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nudge.followups.messages import IssuedCode
from nudge.followups.planning import followup_message
from nudge.followups.webhook import (
    backoff,
    cart_items,
    delivery_outcome,
    issue_code,
    offer_code,
    sign,
    suggestions,
    verify,
    webhook_body,
)
from nudge.visitor.pages import Page
from nudge.visitor.tracking import record_page_view
from tests.core.factories import NOW, session
from tests.core.followups.test_planning import BROWSE, CART, RULES, SITE, cart_session, due_message


def test_the_offer_code_is_single_use_per_event_and_stable_across_retries() -> None:
    assert CART is not None
    m, _ = due_message()
    first = issue_code(b"k", CART, m, m.due)
    assert first is not None and first.code.startswith("CART-") and len(first.code) == 15
    assert first == issue_code(b"k", CART, m, m.due)  # a retry mints the same code
    assert offer_code(b"k", "CART", m.event) != offer_code(b"other", "CART", m.event)
    assert offer_code(b"k", "CART", m.event) != offer_code(b"k", "CART", "b" * 24)
    assert first.percent == 10 and first.category == "sneakers" and first.expires == m.due + 48 * 3600
    assert IssuedCode.decode(first.encode()) == first and IssuedCode.decode(b"[1]") is None
    assert BROWSE is not None and issue_code(b"k", BROWSE, m, m.due) is None


def test_the_payload_has_the_seed_shape_and_a_redeem_link() -> None:
    assert CART is not None
    m, _ = due_message()
    code = issue_code(b"k", CART, m, m.due)
    items = [{"id": "SNK-001", "quantity": 2}]
    body = webhook_body(m, "cust-42", items, [{"id": "x"}], code, m.due)
    assert set(body) >= {"eventId", "userId", "action", "cartItems", "recommendations", "offer"}
    assert body["userId"] == "cust-42" and body["action"] == "abandoned_cart" and body["eventId"] == m.event
    assert code is not None
    assert body["offer"] == {"code": code.code, "percent": 10, "amount": None, "category": "sneakers",
                             "expires": code.expires, "url": f"{SITE}/_nudge/redeem?code={code.code}"}
    json.dumps(body)  # serializable as is


def test_signatures_verify_only_for_the_same_body_secret_and_a_recent_time() -> None:
    body = b'{"eventId":"x"}'
    header = sign(b"s3cret", body, NOW)
    assert verify(b"s3cret", body, header, NOW + 10)
    assert not verify(b"s3cret", body + b" ", header, NOW)
    assert not verify(b"other", body, header, NOW)
    assert not verify(b"s3cret", body, header, NOW + 301)  # a replay, later
    for bad in (None, "", "t=x,v1=00", "v1=" + header.split("v1=")[1], "garbage"):
        assert not verify(b"s3cret", body, bad, NOW)


@pytest.mark.parametrize(("status", "expected"), [
    (200, "delivered"), (202, "delivered"), (204, "delivered"), (None, "retry"), (500, "retry"), (502, "retry"),
    (503, "retry"), (408, "retry"), (429, "retry"), (400, "dead_letter"), (401, "dead_letter"),
    (404, "dead_letter"), (410, "dead_letter"), (301, "dead_letter"),
])
def test_delivery_outcomes(status: int | None, expected: str) -> None:
    assert delivery_outcome(status) == expected


def test_backoff_doubles_and_is_bounded() -> None:
    assert [backoff(a) for a in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(30) == 3600 and backoff(0) == 30


def test_cart_items_carry_what_the_catalog_knows_and_suggestions_never_repeat_the_cart() -> None:
    s, _ = cart_session()
    m = followup_message(CART, s, NOW, SITE)  # type: ignore[arg-type]
    items = cart_items(RULES.catalog, m)
    url = f"{SITE}/collections/sneakers/products/aero-runner"
    assert items == [{"id": "SNK-001", "name": items[0]["name"], "url": url,
                      "price": items[0]["price"], "image": items[0]["image"], "quantity": 2}]
    assert isinstance(items[0]["name"], str) and items[0]["price"] > 0
    picks = suggestions(RULES.catalog, m, 3)
    assert len(picks) == 3 and all(p["id"] != "SNK-001" for p in picks)
    assert all(p["url"].startswith(SITE + "/") for p in picks) and len({p["id"] for p in picks}) == 3
    unknown = dataclasses.replace(m, items=(("NOPE-1", 1),))
    assert cart_items(RULES.catalog, unknown) == [{"id": "NOPE-1", "quantity": 1}]
    assert suggestions(RULES.catalog, unknown, 3) == []


def test_browse_suggestions_are_the_rest_of_the_category() -> None:
    s = session()
    for i, slug in enumerate(("aero-runner", "court-classic", "trail-sprint")):
        record_page_view(s, Page("product", "sneakers", slug), NOW + i)
    m = followup_message(BROWSE, s, NOW + 3, SITE)  # type: ignore[arg-type]
    picks = suggestions(RULES.catalog, m, 4)
    viewed = {"aero-runner", "court-classic", "trail-sprint"}
    assert picks and all(p["url"].rsplit("/", 1)[1] not in viewed for p in picks)
    assert all("/collections/sneakers/" in p["url"] for p in picks[:1])
    assert cart_items(RULES.catalog, m) == []
