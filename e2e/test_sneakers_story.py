"""The canonical story in a real browser: browse sneakers, move to leave, take the offer."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from .conftest import Stack

SNEAKERS = "/collections/sneakers"
MODAL = "#nudge-sneakers-exit-intent"


def product_urls(page: Page) -> list[str]:
    page.goto(SNEAKERS)
    hrefs = page.locator("[data-testid=product-card]").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert len(hrefs) >= 4
    return hrefs


def browse_pairs(page: Page, count: int, stay: str) -> list[str]:
    """Opens `count` sneaker product pages, then lets `stay` (mm:ss) pass on the last one."""
    products = product_urls(page)
    for href in products[:count]:
        page.goto(href)
    page.clock.fast_forward(stay)
    return products


def move_to_leave(page: Page) -> None:
    """The pointer travels up and out through the top edge of the viewport."""
    page.mouse.move(640, 400)
    page.mouse.move(640, 100, steps=5)
    page.mouse.move(640, -20, steps=5)
    page.clock.run_for(300)  # out for longer than the client's short cancellable delay


SCROLL_TO = """(y) => new Promise((done) => {
    const target = Math.max(0, Math.min(y, document.documentElement.scrollHeight - innerHeight));
    if (Math.abs(scrollY - target) < 1) return done();  // already there: no scroll event comes
    addEventListener("scroll", () => done(), {once: true});  // after the page's own listeners
    scrollTo(0, y);
})"""


def scroll_to(page: Page, y: float) -> None:
    """Scrolls the page to `y` and returns once the scroll event has been handled by the page's
    scripts (the browser dispatches it with the next frame)."""
    page.evaluate(SCROLL_TO, y)


def test_nothing_before_thresholds_then_the_popup_on_exit(page: Page) -> None:
    products = product_urls(page)
    for href in products[:2]:
        page.goto(href)
    page.clock.fast_forward("06:00")  # plenty of time, but only two pairs viewed
    move_to_leave(page)
    expect(page.locator(MODAL)).to_have_count(0)

    page.goto(products[2])  # third pair: the 6 minutes already spent count
    expect(page.locator(MODAL)).to_be_hidden()
    page.clock.fast_forward("00:02")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()
    expect(page.locator(MODAL)).to_contain_text("Still thinking?")
    expect(page.locator(MODAL)).to_contain_text("Get 10% off sneakers today only")


def test_a_pointer_that_comes_straight_back_is_not_leaving(page: Page) -> None:
    browse_pairs(page, 3, "05:30")
    page.mouse.move(640, 400)
    page.mouse.move(640, -20, steps=5)
    page.mouse.move(640, 300, steps=2)  # back within the delay
    page.clock.run_for(300)
    expect(page.locator(MODAL)).to_be_hidden()
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()


def test_three_products_but_too_little_time_waits_for_the_rest(page: Page) -> None:
    browse_pairs(page, 3, "01:00")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_hidden()
    page.clock.fast_forward("04:05")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()


def test_offer_applies_discount_and_popup_never_returns(page: Page) -> None:
    products = browse_pairs(page, 3, "05:01")
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()
    assert [r.url for r in requests if "/_nudge/beacon" not in r.url] == []  # nothing fetched to show it

    page.locator(MODAL).get_by_role("link", name="Get 10% off sneakers").click()
    expect(page).to_have_url(re.compile(re.escape(SNEAKERS) + "$"))
    expect(page.locator("#nudge-offer-applied")).to_contain_text("10% off sneakers applied")
    expect(page.locator("[data-testid=card-discounted-price]")).to_have_count(len(products))
    page.goto(products[0])  # the origin received the offer: the product page is discounted too
    price = float(page.locator("[data-testid=price]").get_attribute("data-price") or 0)
    discounted = page.locator("[data-testid=discounted-price]").inner_text()
    assert f"{price * 0.9:.2f}" in discounted

    for href in products[:4]:  # the rest of the visit: the popup never shows again
        page.goto(href)
        page.clock.fast_forward("02:00")
        move_to_leave(page)
        expect(page.locator(MODAL)).to_have_count(0)


def test_tampered_cookie_starts_a_fresh_session(page: Page, context: BrowserContext, stack: Stack) -> None:
    products = browse_pairs(page, 3, "05:01")
    page.goto(products[3])
    expect(page.locator(MODAL)).to_have_count(1)  # qualified

    cookie = next(c for c in context.cookies() if c["name"] == "nudge")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    value = cookie["value"]
    tampered = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    context.add_cookies([{**cookie, "value": tampered}])
    response = page.goto(products[3])
    assert response is not None and response.status == 200
    expect(page.locator("[data-testid=add-to-cart]")).to_be_visible()  # the shop's page, intact
    expect(page.locator(MODAL)).to_have_count(0)  # progress forgotten: a fresh session
    fresh = next(c for c in context.cookies() if c["name"] == "nudge")["value"]
    assert fresh not in (value, tampered)


def test_non_html_asset_is_byte_identical(page: Page, stack: Stack) -> None:
    html = page.request.get(stack.shop + "/").text()
    asset = re.search(r'(/static/[^"\']+\.png)', html)
    assert asset, "the shop links a PNG asset"
    direct = page.request.get(stack.shop + asset.group(1))
    edge = page.request.get(stack.edge + asset.group(1))
    assert edge.status == direct.status == 200
    assert edge.body() == direct.body()
    assert edge.headers["content-type"] == direct.headers["content-type"]
    assert "set-cookie" not in edge.headers


def test_adding_to_cart_means_no_popup(page: Page) -> None:
    products = browse_pairs(page, 3, "05:01")
    with page.expect_response(lambda r: "/cart/add" in r.url and r.request.method == "POST") as added:
        page.locator("[data-testid=add-to-cart]").click()  # seen at the edge (cart endpoints in rules/site.toml)
    assert added.value.status == 200
    expect(page.locator("[data-testid=cart-count]")).to_have_text("1")
    page.goto(products[3])
    page.clock.fast_forward("00:02")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_have_count(0)  # the cart is not empty: the rule does not apply


def test_dismissing_closes_it_for_the_visit(page: Page) -> None:
    products = browse_pairs(page, 3, "05:01")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()
    expect(page.locator(MODAL).get_by_role("link")).to_be_focused()  # focus moves into the dialog
    with page.expect_response(lambda r: "/_nudge/beacon" in r.url) as beacon:
        page.keyboard.press("Escape")
    assert beacon.value.status == 204
    expect(page.locator(MODAL)).to_be_hidden()
    page.goto(products[3])
    expect(page.locator(MODAL)).to_have_count(0)


def test_time_on_page_rule_reveals_after_twenty_visible_seconds(page: Page) -> None:
    page.goto("/collections/boots")
    banner = page.locator("#nudge-boots-fit-guide")
    expect(banner).to_be_hidden()  # rendered by the edge, waiting for its trigger
    page.clock.fast_forward("00:15")
    expect(banner).to_be_hidden()
    page.clock.fast_forward("00:06")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Between sizes?")
    page.goto("/collections/sneakers")
    expect(page.locator("#nudge-boots-fit-guide")).to_have_count(0)  # boots pages only


def test_cart_abandoned_rule_reminds_after_fifteen_minutes(page: Page) -> None:
    page.goto("/collections/sneakers/products/aero-runner")
    with page.expect_response(lambda r: "/cart/add" in r.url and r.request.method == "POST"):
        page.locator("[data-testid=add-to-cart]").click()
    page.goto("/")
    reminder = page.locator("#nudge-cart-reminder")
    expect(reminder).to_be_hidden()
    page.clock.fast_forward("10:00")
    expect(reminder).to_be_hidden()
    page.clock.fast_forward("05:01")
    expect(reminder).to_be_visible()
    expect(reminder).to_contain_text("Your cart is waiting")
    page.goto("/cart")
    expect(page.locator("#nudge-cart-reminder")).to_have_count(0)  # not on the cart page itself


def test_forged_offer_link_lands_politely_and_a_second_click_changes_nothing(
        page: Page, context: BrowserContext) -> None:
    page.goto("/_nudge/redeem?t=forged.link")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#nudge-notice")).to_contain_text("expired")
    expect(page.locator("[data-testid=offer-note]")).to_have_count(0)  # no discount
    page.reload()
    expect(page.locator("#nudge-notice")).to_have_count(0)  # said once

    browse_pairs(page, 3, "05:01")
    move_to_leave(page)
    link = page.locator(MODAL).get_by_role("link", name="Get 10% off sneakers")
    href = link.get_attribute("href") or ""
    link.click()
    expect(page.locator("#nudge-offer-applied")).to_be_visible()
    offer = next(c for c in context.cookies() if c["name"] == "nudge_offer")
    page.goto(href)  # the same link again: same offer, not a second one
    expect(page.locator("#nudge-offer-applied")).to_be_visible()
    again = next(c for c in context.cookies() if c["name"] == "nudge_offer")
    assert again["value"] == offer["value"] and again["expires"] == offer["expires"]


@pytest.fixture
def phone(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A page in a phone-sized, touch-screen context, with the page clock installed."""
    context = browser.new_context(base_url=stack.edge, is_mobile=True, has_touch=True,
                                  viewport={"width": 390, "height": 700})
    page = context.new_page()
    page.clock.install()
    yield page
    context.close()


def test_mobile_exit_intent_is_a_fast_upward_scroll(phone: Page) -> None:
    browse_pairs(phone, 3, "05:01")
    scroll_to(phone, phone.evaluate("document.documentElement.scrollHeight"))
    scroll_to(phone, 0)  # a flick back up: ~1,000 px in a moment
    expect(phone.locator(MODAL)).to_be_visible()


def test_a_slow_scroll_up_on_mobile_is_not_exit_intent(phone: Page) -> None:
    browse_pairs(phone, 3, "05:01")
    height = phone.evaluate("document.documentElement.scrollHeight")
    scroll_to(phone, height)
    for y in [*range(int(height), 0, -100), 0]:  # 100 px every second: reading, not leaving
        phone.clock.run_for(1000)
        scroll_to(phone, y)
    assert phone.evaluate("window.scrollY") == 0 and height > 1000
    expect(phone.locator(MODAL)).to_be_hidden()
