"""The sneakers story and the cart on a stock Django Oscar shop, in a real browser, configured only by
docs/platforms.md's Oscar recipe (e2e/platforms/oscar/rules, published to the edge's KV): 5 minutes
on sneakers and 3 pairs then moving to leave shows the popup; its offer is told honestly (the code
to enter, no price rewritten) and the shop's own voucher charges it; nudge's cart counts what
Oscar's basket holds through its own add-to-basket and basket forms."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from e2e.platforms.oscar.setup_shop import SNEAKERS, VOUCHER_CODE
from nudge.rules.load import load_ruleset
from nudge_tools.inputs import read_rule_files

from .conftest import OSCAR_RULES, Stack, clocked_page
from .test_sneakers_story import MODAL, move_to_leave
from .test_visitor_model import session_of

CATEGORY = "/catalogue/category/sneakers_1/"
PRICES = {title: f"£{price}" for _, title, price, *_ in SNEAKERS}


def test_the_recipe_classifies_oscar_urls() -> None:
    """The rules check passes (publishing refuses anything else) and reads Oscar's URLs as meant."""
    rules = load_ruleset(read_rule_files(OSCAR_RULES))
    classify = rules.classifier.classify
    for path, kind, category, product in [
        (CATEGORY, "category", "sneakers", None),
        ("/catalogue/category/shoes/running_3/", "category", "running", None),  # the deepest counts
        ("/catalogue/trail-runner_1/", "product", None, "trail-runner"),  # its category: catalog.toml
        ("/basket/", "cart", None, None),
        ("/checkout/thank-you/", "confirmation", None, None),
        ("/checkout/payment-details/", "checkout", None, None),
    ]:
        page = classify(path)
        assert (page.type, page.category, page.product) == (kind, category, product), path
    assert {p.id: p.category for p in rules.catalog.products} == dict.fromkeys(
        ["trail-runner", "court-classic", "city-knit", "track-spike", "canvas-low"], "sneakers")


@pytest.fixture
def shopper(browser: Browser, oscar_stack: Stack) -> Iterator[Page]:
    with clocked_page(browser, oscar_stack) as p:
        yield p


def sneaker_pages(page: Page) -> list[str]:
    page.goto(CATEGORY)
    hrefs: list[str] = page.locator("article.product_pod .image_container a").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))")
    assert len(hrefs) == len(SNEAKERS), hrefs
    return hrefs


def browse_sneakers(page: Page, count: int, stay: str) -> list[str]:
    """The Sneakers category, then `count` product pages; `stay` (mm:ss) passes on the last one."""
    products = sneaker_pages(page)
    for href in products[:count]:
        page.goto(href)
    page.clock.fast_forward(stay)
    return products


def add_to_basket(page: Page, product: str, quantity: int = 1) -> None:
    """Oscar's own "Add to basket" form on the product page (its quantity is a hidden field)."""
    page.goto(product)
    form = page.locator("#add_to_basket_form")
    form.locator("input[name=quantity]").evaluate("(input, n) => { input.value = n; }", str(quantity))
    with page.expect_response(lambda r: "/basket/add/" in r.url and r.request.method == "POST") as added:
        form.get_by_role("button", name="Add to basket").click()
    assert added.value.status == 302  # Oscar's redirect after adding (a refused form is 403)
    page.wait_for_load_state()


def oscar_basket(page: Page) -> list[int]:
    """The quantities of the lines of Oscar's basket page as the shop renders it."""
    if not page.url.endswith("/basket/"):
        page.goto("/basket/")
    quantities = page.locator("#basket_formset input[name$='-quantity']")
    return [int(v) for v in quantities.evaluate_all("els => els.map(e => e.value)")]


def update_basket(page: Page, action: str, line: int, quantity: int | None = None) -> None:
    """Oscar's basket form: a new quantity for a line ("Update"), or its "Remove" link; Oscar's
    script posts the whole formset to /basket/ and redraws the basket."""
    rows = page.locator("#basket_formset .basket-items")
    with page.expect_response(lambda r: r.url.endswith("/basket/") and r.request.method == "POST") as posted:
        if action == "update":
            rows.nth(line).locator("input[name$='-quantity']").fill(str(quantity))
            rows.nth(line).get_by_role("button", name="Update").click()
        else:
            rows.nth(line).get_by_role("link", name="Remove").click()
    assert posted.value.status == 200


def nudge_cart_becomes(context: BrowserContext, items: int, value: float | None = None, timeout: float = 10) -> None:
    """Waits until the session cookie says the cart holds `items` (worth `value`, when given): the
    cookie comes with the shop's answer to the cart request."""
    deadline = time.monotonic() + timeout
    while True:
        session = session_of(context)
        seen = (session.cart_items, session.cart_value / 100) if session is not None else None
        if seen is not None and seen[0] == items and value in (None, seen[1]):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nudge's cart (items, value) is {seen}, Oscar's basket holds {items} ({value})")
        time.sleep(0.05)  # polling the browser's cookie jar until the state arrives


def test_the_sneakers_story_then_the_shops_voucher_charges_the_discount(shopper: Page) -> None:
    page = shopper
    browse_sneakers(page, 3, "05:01")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()
    expect(page.locator(MODAL)).to_contain_text("Get 10% off sneakers today only")

    page.locator(MODAL).get_by_role("link", name="Get 10% off sneakers").click()
    expect(page).to_have_url(re.compile(re.escape(CATEGORY) + "$"))
    banner = page.locator("[data-nudge-offer]")
    expect(banner).to_have_attribute("data-nudge-offer", "code")
    expect(banner.locator("span")).to_have_text(f"10% off sneakers: use code {VOUCHER_CODE} at checkout")
    html = page.content()
    assert "applied" not in html and "nudge-now" not in html and "data-nudge-priced" not in html
    for title, price in PRICES.items():  # every card at the shop's own price
        card = page.locator("article.product_pod").filter(has_text=title)
        expect(card.locator(".price_color")).to_have_text(price)

    add_to_basket(page, "/catalogue/trail-runner_1/")
    expect(page.locator(MODAL)).to_have_count(0)
    page.goto("/basket/")
    totals = page.locator("#basket_totals")
    expect(totals.locator("h3.price_color")).to_have_text(PRICES["Trail Runner"])  # the list price until the code

    page.get_by_role("link", name="I have a voucher code...").click()
    page.locator("#id_code").fill(VOUCHER_CODE)
    page.get_by_role("button", name="Add voucher").click()
    expect(page).to_have_url(re.compile(r"/basket/$"))
    expect(totals.locator("h3.price_color")).to_have_text("£116.10")  # the shop's own basket: 10% off
    expect(totals).to_contain_text(VOUCHER_CODE)


def test_nudges_cart_counts_what_oscars_basket_holds(shopper: Page) -> None:
    page, context = shopper, shopper.context
    products = browse_sneakers(page, 3, "05:01")
    track_spike, court_classic = "/catalogue/track-spike_4/", "/catalogue/court-classic_2/"
    add_to_basket(page, track_spike, 2)  # product pks and basket line ids differ from here on
    nudge_cart_becomes(context, 2, 300.0)  # priced from catalog.toml: Oscar's pages carry no price facts
    page.goto(products[0])
    move_to_leave(page)
    expect(page.locator(MODAL)).to_have_count(0)  # something in the basket: "added nothing" is false

    add_to_basket(page, court_classic)
    assert oscar_basket(page) == [2, 1]
    nudge_cart_becomes(context, 3, 389.0)

    update_basket(page, "update", 0, 3)  # the formset posts every line; this one's quantity changed
    expect(page.locator("#basket_formset input[name$='-quantity']").first).to_have_value("3")
    assert sum(oscar_basket(page)) == 4
    nudge_cart_becomes(context, 4)

    update_basket(page, "remove", 1)
    expect(page.locator("#basket_formset .basket-items")).to_have_count(1)
    assert oscar_basket(page) == [3]
    nudge_cart_becomes(context, 3)

    add_to_basket(page, track_spike)  # Oscar adds to the existing line
    assert oscar_basket(page) == [4]
    nudge_cart_becomes(context, 4)

    update_basket(page, "update", 0, 0)  # 0 empties the line: an empty basket
    expect(page.locator("#basket_formset")).to_have_count(0)
    nudge_cart_becomes(context, 0)
