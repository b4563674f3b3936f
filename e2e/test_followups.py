"""The follow-up loop in Chromium: a signed-in shopper adds to the cart and leaves; 15 minutes
later (here a second: NUDGE_LOCAL_QUEUE_DELAY_CAP caps the real-time queue delay on workerd, then
the consumer's batch timeout, a second too) the demo shop's receiver shows the signed payload with the cart, and
the code in it applies the discount when the shopper comes back."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from e2e.conftest import Stack, clocked_page, shop_behind_edge

SNEAKER = "/collections/sneakers/products/aero-runner"
FOLLOWUP_PREFIX = '{"nudge":"followup",'


@pytest.fixture(scope="module")
def followup_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with shop_behind_edge(tmp_path_factory.mktemp("kv-followups"), "--var", "NUDGE_LOCAL_QUEUE_DELAY_CAP:1",
                          followups=True) as s:
        yield s


def followup_attempts(stack: Stack) -> list[dict[str, Any]]:
    """nudge's log line for each follow-up message the queue consumer handled."""
    lines = stack.process.output().splitlines()
    return [json.loads(line[line.find(FOLLOWUP_PREFIX):]) for line in lines if FOLLOWUP_PREFIX in line]


def wait_for_delivery(stack: Stack, seconds: float = 60) -> list[dict[str, Any]]:
    """The shop receiver's verified deliveries, once there is one; fails with the edge's output."""
    deadline = time.monotonic() + seconds
    while True:
        verified = [d for d in httpx.get(f"{stack.shop}/webhooks?format=json", timeout=10).json() if d["verified"]]
        if verified:
            return verified
        if time.monotonic() > deadline:
            pytest.fail(f"no verified follow-up at the shop's receiver in {seconds} s; the edge's output:\n"
                        f"{stack.process.output()}")
        time.sleep(0.1)


def wait_for_logged_delivery(stack: Stack, seconds: float = 30) -> list[dict[str, Any]]:
    """nudge's follow-up log lines, once one says "delivered"; fails with the edge's output."""
    deadline = time.monotonic() + seconds
    while True:
        handled = followup_attempts(stack)
        if any(a["result"] == "delivered" for a in handled):
            return handled
        if time.monotonic() > deadline:
            pytest.fail(f"no delivered follow-up logged in {seconds} s; the edge's output:\n{stack.process.output()}")
        time.sleep(0.1)


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

        assert len(wait_for_delivery(stack)) == 1  # through Queues and the Worker's consumer
        # the consumer logs the attempt after the receiver answered: wait for that line too
        handled = wait_for_logged_delivery(stack)  # the first attempt; any earlier message superseded
        delivered = [(a["rule"], a["attempt"]) for a in handled if a["result"] == "delivered"]
        assert delivered == [("cart-abandoned-email", 1)]
        assert {a["result"] for a in handled} <= {"delivered", "skipped"}
        assert "TypeError" not in stack.process.output()

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
