"""The follow-up loop in Chromium: a signed-in shopper adds to the cart and leaves; 15 minutes
later (the local runtime's queue clock, advanced) the demo shop's receiver shows the signed
payload with the cart, and the code in it applies the discount when the shopper comes back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from e2e.conftest import Stack, clocked_page, shop_behind_edge

SNEAKER = "/collections/sneakers/products/aero-runner"


@pytest.fixture(scope="module")
def followup_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with shop_behind_edge(tmp_path_factory.mktemp("kv-followups"), followups=True) as s:
        yield s


def test_an_abandoned_cart_reaches_the_shops_receiver_and_its_code_applies_the_discount(
        browser: Browser, followup_stack: Stack) -> None:
    stack = followup_stack
    with clocked_page(browser, stack) as page:
        page.goto("/account")
        page.get_by_label("Customer id").fill("alice@example.com")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("signed-in-as")).to_have_text("alice@example.com")
        page.goto(SNEAKER)  # the customer is named to nudge on this page
        with page.expect_response(lambda r: "/cart/add" in r.url and r.request.method == "POST"):
            page.get_by_test_id("add-to-cart").click()
        expect(page.get_by_test_id("cart-count")).to_have_text("1")
        page.goto("about:blank")  # and leaves

        queue = httpx.get(f"{stack.edge}/__local-edge/queues", timeout=10).json()["queues"]["nudge-followups"]
        for _ in range(100):
            if queue["pending"]:
                break
            page.wait_for_timeout(50)
            queue = httpx.get(f"{stack.edge}/__local-edge/queues", timeout=10).json()["queues"]["nudge-followups"]
        assert queue["pending"], "the add to cart enqueued no follow-up"
        httpx.post(f"{stack.edge}/__local-edge/queues/advance?seconds=900", timeout=60).raise_for_status()

        page.goto(f"{stack.shop}/webhooks")
        delivery = page.get_by_test_id("webhook").first
        expect(delivery).to_have_attribute("data-verified", "yes")
        expect(delivery.get_by_test_id("webhook-user")).to_have_text("alice@example.com")
        payload = json.loads(delivery.get_by_test_id("webhook-payload").inner_text())
        assert payload["action"] == "abandoned_cart"
        assert [(i["id"], i["name"], i["quantity"]) for i in payload["cartItems"]] == [("SNK-001", "Aero Runner", 1)]
        offer = payload["offer"]
        assert re.fullmatch(r"CART-[A-Z2-7]{10}", offer["code"]) and offer["percent"] == 10
        page.screenshot(path="test-results/followup-receiver.png", full_page=True)

        page.goto(offer["url"])  # back from the email
        assert page.url == f"{stack.edge}/cart"
        expect(page.get_by_test_id("cart-items")).to_contain_text("Aero Runner")
        expect(page.get_by_test_id("offer-note")).to_contain_text("10%")
