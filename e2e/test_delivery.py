"""Delivery in a real browser: slot, badge and recommendations in the page as it arrives (no
flicker), prices rewritten for a shop without integration (and not twice for one with it), a strict
Content-Security-Policy, the scroll and inactivity triggers, and mobile exit intent on returning to
the tab."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, BrowserContext, Cookie, Page, Response, expect

from nudge.kv_keys import profile_key
from nudge.visitor.profile import Profile, decode_profile

from .conftest import Stack, clocked_page, kv_value
from .test_accessibility import CLS_OBSERVER, axe_violations, layout_shift
from .test_sneakers_story import MODAL, SNEAKERS, browse_pairs, move_to_leave, phone, scroll_to  # noqa: F401
from .test_visitor_model import CODEC, session_of

AERO = "/collections/sneakers/products/aero-runner"  # $129.00; goes with socks and the cleaning kit
COURT = "/collections/sneakers/products/court-classic"  # $89.00
TRAIL = "/collections/sneakers/products/trail-sprint"  # $149.00
SOCKS = "/collections/accessories/products/merino-crew-socks"  # $24.00
KIT = "/collections/accessories/products/sneaker-cleaning-kit"  # $18.50
LACES = "/collections/accessories/products/waxed-laces"  # $9.00

HERO = "#nudge-welcome-back-hero"
RECS = "#nudge-recommendations"
SHIPPING_BADGE = "#nudge-free-shipping-badge"
BUYER_BADGE = "#nudge-top-buyer-badge"
SCROLL_TIP = "#nudge-accessories-scroll-tip"
IDLE_HELP = "#nudge-cart-idle-help"
SITE_SHIPPING_NOTE = "Free shipping on orders over $100."


# -- helpers --------------------------------------------------------------------------------------


def served(page: Page, path: str) -> tuple[Response, str]:
    """Navigates and returns the response with its HTML exactly as the browser received it."""
    response = page.goto(path)
    assert response is not None and response.status == 200
    return response, response.text()


def in_initial_html(html: str, rule: str) -> bool:
    return f'id="nudge-{rule}"' in html


def client_nudges(page: Page) -> list[str]:
    """Rules the client script is asked to reveal later (inline kinds are never among them)."""
    return list(page.evaluate("(window.__nudge && window.__nudge.nudges || []).map(n => n.rule)"))


def add_to_cart(page: Page, product: str) -> None:
    page.goto(product)
    with page.expect_response(lambda r: "/cart/add" in r.url and r.request.method == "POST") as added:
        page.locator("[data-testid=add-to-cart]").click()
    assert added.value.status == 200


def remove_from_cart(page: Page, name: str) -> None:
    """Removes a line on the cart page (the shop updates the page in place, without a reload)."""
    with page.expect_response(lambda r: "/cart/remove" in r.url and r.request.method == "POST") as removed:
        page.get_by_role("button", name=f"Remove {name}").click()
    assert removed.value.status == 200


def stored_profile(stack: Stack, context: BrowserContext) -> Profile | None:
    """The browser's visitor's profile as the edge's KV holds it now."""
    session = session_of(context)
    return decode_profile(kv_value(stack, profile_key(session.visitor_id))) if session else None


def wait_for(condition: Callable[[], bool], what: str | Callable[[], str], stack: Stack, timeout: float = 15) -> None:
    """Polls `condition` (the edge writes KV and answers beacons in the background: never a fixed
    sleep); fails with the end of the edge's output when `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what  # what was seen last, for a failure worth reading
            pytest.fail(f"timed out waiting for {said}:\n{stack.process.output()[-3000:]}")
        time.sleep(0.05)


def profile_visits(stack: Stack, context: BrowserContext, visits: int) -> None:
    """Until the profile counts `visits` visits (a visit's first page writes it, in the background)."""
    seen: list[object] = []

    def counted() -> bool:
        seen[:] = [getattr(stored_profile(stack, context), "visits", None)]
        return seen[0] == visits

    wait_for(counted, lambda: f"the profile to count {visits} visit(s) (it counts {seen[0] if seen else None})", stack)


def place_order(page: Page, context: BrowserContext, stack: Stack, product: str) -> None:
    """Buys `product` through the shop's checkout; the thank-you page's origin response names the
    order (X-Nudge-Order), which is what nudge counts."""
    orders = orders_of(context)
    add_to_cart(page, product)
    in_profile = getattr(stored_profile(stack, context), "orders", 0)
    page.goto("/checkout")
    page.locator("[data-testid=place-order]").click()
    expect(page.locator("[data-testid=order-id]")).to_be_visible()
    # The thank-you page's answer carries the updated session cookie; the profile merge it
    # started runs in the background.
    wait_for(lambda: orders_of(context) > orders, "the thank-you page's session cookie", stack)
    assert orders_of(context) == orders + 1
    wait_for(lambda: getattr(stored_profile(stack, context), "orders", 0) > in_profile,
             "the order in the KV profile", stack)
    assert getattr(stored_profile(stack, context), "orders", 0) == in_profile + 1


def orders_of(context: BrowserContext) -> int:
    session = session_of(context)
    return session.orders if session else 0


def recommended(page: Page) -> list[str]:
    return list(page.locator(f"{RECS} [data-nudge-product]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-nudge-product'))"))


@contextmanager
def earlier_visit(context: BrowserContext, stack: Stack, minutes: int = 31) -> Iterator[Page]:
    """A tab for the shopper's earlier visit, in a cookie jar of its own that starts as `context`'s.
    When the block ends, the shopper returns `minutes` idle later in `context`: it gets that jar's
    cookies with the session's clock moved back (the edge reads the server's time, which the page
    clock does not move), so its next page starts a visit. A jar of its own, because the earlier
    visit's last beacons (a page sends them as the next page commits; Playwright never sees them)
    may be answered after any moment a test could pick: their session cookie, landing in `context`
    after the clock was moved back, would put the idle time back to none."""
    browser = context.browser
    assert browser is not None  # a context the `browser` fixture made
    first = browser.new_context(base_url=stack.edge, viewport={"width": 1280, "height": 800})
    try:
        first.add_cookies(context.cookies())  # type: ignore[arg-type]
        yield first.new_page()
        cookies = first.cookies()
    finally:
        first.close()  # its beacons still on their way go nowhere now
    context.clear_cookies()
    context.add_cookies([_moved_back(c, minutes) if c["name"] == "nudge" else c for c in cookies])  # type: ignore[misc]


def _moved_back(cookie: Cookie, minutes: int) -> Cookie:
    """The session cookie as it would be `minutes` later: every time in it moved back."""
    session = CODEC.decode(cookie["value"])
    shift = minutes * 60
    session.started -= shift
    session.last_seen -= shift
    for stats in session.categories.values():
        stats.last_seen -= shift
    if session.cart_changed:
        session.cart_changed -= shift
    return {**cookie, "value": CODEC.encode(session)}


def returning_sneaker_fan(page: Page, context: BrowserContext, stack: Stack) -> None:
    """A first visit spent on sneakers, then a second visit. Its first page is the boots collection:
    the return visit is counted in the profile on that page."""
    with earlier_visit(context, stack) as first:
        first.goto("/")
        first.goto(SNEAKERS)
        first.goto(AERO)
        first.goto(COURT)
        profile_visits(stack, first.context, 1)  # the first visit's profile write (in the background) has landed
    page.goto("/collections/boots")  # the second visit's first page counts it in the profile
    profile_visits(stack, context, 2)


def set_tab_hidden(page: Page, hidden: bool) -> None:
    """Another app in front (hidden) or back to the tab (visible), as a phone's browser reports it."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
                                                           get: () => hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


# -- slot, badge, recommendations -----------------------------------------------------------------


def test_welcome_back_hero_fills_the_home_slot_for_a_returning_sneaker_fan(page: Page, context: BrowserContext,
                                                                          stack: Stack) -> None:
    _, html = served(page, "/")
    hero = page.locator('[data-nudge-slot="hero"]')
    expect(hero).to_contain_text("Shoes for every mile")  # a first visit: the shop's own hero
    assert not in_initial_html(html, "welcome-back-hero")

    returning_sneaker_fan(page, context, stack)
    _, html = served(page, "/")
    assert in_initial_html(html, "welcome-back-hero")  # in the page as served: no flicker
    expect(hero.locator(HERO)).to_be_visible()  # no trigger, no wait
    expect(hero).to_contain_text("Welcome back")
    expect(hero).not_to_contain_text("Shoes for every mile")  # the slot's content is replaced
    expect(hero.get_by_role("link", name="See what's new")).to_have_attribute("href", SNEAKERS)
    assert "welcome-back-hero" not in client_nudges(page)


def test_welcome_back_hero_on_the_landing_page_of_the_return_visit(page: Page, context: BrowserContext,
                                                                   stack: Stack) -> None:
    with earlier_visit(context, stack) as first:
        first.goto("/")
        first.goto(SNEAKERS)
        first.goto(AERO)
        profile_visits(stack, first.context, 1)
    _, html = served(page, "/")  # the return visit lands on the home page
    assert in_initial_html(html, "welcome-back-hero")


def test_returning_visitor_without_sneaker_interest_keeps_the_shops_hero(page: Page, context: BrowserContext,
                                                                        stack: Stack) -> None:
    with earlier_visit(context, stack) as first:
        first.goto("/collections/boots")
        first.goto("/collections/boots/products/ridge-hiker")
        profile_visits(stack, first.context, 1)
    page.goto("/collections/accessories")
    profile_visits(stack, context, 2)
    _, html = served(page, "/")
    assert not in_initial_html(html, "welcome-back-hero")
    expect(page.locator('[data-nudge-slot="hero"] h1')).to_have_text("Shoes for every mile")


def test_returning_shopper_with_a_cart_keeps_their_session(page: Page, context: BrowserContext,
                                                         stack: Stack) -> None:
    with earlier_visit(context, stack) as earlier:
        add_to_cart(earlier, LACES)
        first = session_of(earlier.context)
    page.goto("/")  # the return visit's first page: a new visit, the cart kept
    page.goto("/cart")  # its second page
    now = session_of(context)
    assert first is not None and now is not None
    assert (now.visitor, now.cart, now.pages) == (first.visitor, {"ACC-004": 1}, 2)


def test_recommendations_are_in_the_product_page_as_served(page: Page) -> None:
    _, html = served(page, AERO)
    assert in_initial_html(html, "recommendations")
    recs = page.locator(f'[data-nudge-slot="recommendations"] > {RECS}')
    expect(recs).to_be_visible()
    expect(recs.get_by_role("heading", name="Picked for you")).to_be_visible()
    ids = recommended(page)
    # aero-runner's accessories from rules/catalog.toml first, then more sneakers; never itself
    assert ids[:2] == ["merino-crew-socks", "sneaker-cleaning-kit"]
    assert "aero-runner" not in ids and 0 < len(ids) <= 4 and len(set(ids)) == len(ids)
    link = recs.locator('[data-nudge-product="merino-crew-socks"]')
    expect(link).to_have_attribute("href", SOCKS)
    expect(link).to_contain_text("$24.00")
    assert "recommendations" not in client_nudges(page)


def test_recommendations_never_list_the_cart_or_the_product_on_screen(page: Page) -> None:
    page.goto(TRAIL)
    page.goto(COURT)
    add_to_cart(page, SOCKS)
    add_to_cart(page, KIT)
    page.goto(AERO)
    ids = recommended(page)
    assert ids and not {"aero-runner", "merino-crew-socks", "sneaker-cleaning-kit"} & set(ids)
    assert "court-classic" in ids and "trail-sprint" in ids  # recently viewed come first
    assert len(ids) <= 4 and len(set(ids)) == len(ids)

    _, html = served(page, "/cart")
    assert in_initial_html(html, "recommendations")
    expect(page.locator(f'[data-nudge-slot="recommendations"] > {RECS}')).to_be_visible()
    ids = recommended(page)
    assert "aero-runner" in ids  # viewed, not in the cart
    assert not {"merino-crew-socks", "sneaker-cleaning-kit"} & set(ids)

    page.goto(SOCKS)  # the product on screen is also in the cart
    ids = recommended(page)
    assert ids and not {"merino-crew-socks", "sneaker-cleaning-kit"} & set(ids)


def test_free_shipping_badge_counts_down_as_the_cart_changes(page: Page) -> None:
    slot = page.locator('[data-nudge-slot="cart-badges"]')
    _, html = served(page, "/cart")
    expect(page.locator("[data-testid=cart-empty]")).to_be_visible()
    assert not in_initial_html(html, "free-shipping-badge")

    add_to_cart(page, LACES)  # $9.00
    _, html = served(page, "/cart")
    assert in_initial_html(html, "free-shipping-badge")
    expect(slot.locator(SHIPPING_BADGE)).to_have_text("You're $91.00 away from free shipping")
    expect(slot).to_contain_text(SITE_SHIPPING_NOTE)  # a badge adds to the slot, the site's note stays
    assert "free-shipping-badge" not in client_nudges(page)

    add_to_cart(page, SOCKS)  # $33.00 in all
    page.goto("/cart")
    expect(slot.locator(SHIPPING_BADGE)).to_have_text("You're $67.00 away from free shipping")

    remove_from_cart(page, "Waxed Laces")  # $24.00 left
    page.reload()
    expect(slot.locator(SHIPPING_BADGE)).to_have_text("You're $76.00 away from free shipping")

    add_to_cart(page, COURT)  # $113.00: free shipping reached, nothing to count down
    _, html = served(page, "/cart")
    assert not in_initial_html(html, "free-shipping-badge")
    expect(slot).to_have_text(SITE_SHIPPING_NOTE)  # the slot no rule fills keeps the site's content


def test_inline_kinds_show_without_javascript(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(base_url=stack.edge, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(AERO)
        expect(page.locator(RECS)).to_be_visible()  # the client script cannot run: all in the HTML
        page.goto(LACES)
        page.locator("[data-testid=add-to-cart]").click()  # a plain form POST, seen at the edge
        page.wait_for_load_state()
        page.goto("/cart")
        expect(page.locator(SHIPPING_BADGE)).to_have_text("You're $91.00 away from free shipping")
        expect(page.locator(RECS)).to_be_visible()
    finally:
        context.close()


def test_top_buyer_badge_after_two_orders(page: Page, context: BrowserContext, stack: Stack) -> None:
    _, html = served(page, AERO)
    assert not in_initial_html(html, "top-buyer-badge")
    expect(page.locator('[data-nudge-slot="product-badges"]')).to_be_empty()  # the site's (empty) slot

    place_order(page, context, stack, LACES)
    place_order(page, context, stack, KIT)
    _, html = served(page, AERO)
    assert in_initial_html(html, "top-buyer-badge")
    badge = page.locator(f'[data-nudge-slot="product-badges"] > {BUYER_BADGE}')
    expect(badge).to_be_visible()
    expect(badge).to_have_text("Top buyer: thanks for coming back")
    assert "top-buyer-badge" not in client_nudges(page)


def test_one_order_is_not_a_repeat_buyer(page: Page, context: BrowserContext, stack: Stack) -> None:
    place_order(page, context, stack, LACES)
    _, html = served(page, AERO)
    assert not in_initial_html(html, "top-buyer-badge")


# -- prices ---------------------------------------------------------------------------------------


def redeem_sneakers_offer(page: Page, says: str = "10% off sneakers applied") -> list[str]:
    """The canonical story: 5 minutes on sneakers, 3 pairs, move to leave, take the offer; the
    offer's banner then `says` what the shop's cart backs."""
    products = browse_pairs(page, 3, "05:01")
    move_to_leave(page)
    page.locator(MODAL).get_by_role("link", name="Get 10% off sneakers").click()
    expect(page).to_have_url(re.compile(re.escape(SNEAKERS) + "$"))
    expect(page.locator("[data-nudge-offer]")).to_contain_text(says)
    return products


CODE_AT_CHECKOUT = "10% off sneakers: use code SNEAKERS10 at checkout"


def cart_total(page: Page, product: str) -> str:
    """What the shop's cart charges for one `product` (the cart page's total)."""
    add_to_cart(page, product)
    page.goto("/cart")
    return page.locator("[data-testid=cart-total]").inner_text()


@pytest.fixture
def unintegrated_page(browser: Browser, unintegrated_stack: Stack) -> Iterator[Page]:
    with clocked_page(browser, unintegrated_stack) as p:
        yield p


@pytest.fixture
def honoured_page(browser: Browser, honoured_stack: Stack) -> Iterator[Page]:
    with clocked_page(browser, honoured_stack) as p:
        yield p


def test_a_shop_without_integration_is_told_no_discount_it_will_not_charge(unintegrated_page: Page) -> None:
    page = unintegrated_page
    redeem_sneakers_offer(page, CODE_AT_CHECKOUT)  # the code, to enter at checkout: nothing "applied"
    expect(page.locator("#nudge-offer-applied")).to_have_count(0)
    response, html = served(page, AERO)
    assert "x-nudge-offer-applied" not in response.headers  # the shop ignored the offer
    assert "data-nudge-priced" not in html and 'class="nudge-now"' not in html and "applied" not in html
    expect(page.locator("[data-nudge-offer=code] > span")).to_have_text(CODE_AT_CHECKOUT)
    expect(page.locator(".product__price")).to_have_text("$129.00")
    assert cart_total(page, AERO) == "$129.00"  # what the page showed is what the cart charges


def test_worker_rewrites_marked_prices_for_a_cart_that_honours_the_offer(honoured_page: Page) -> None:
    page = honoured_page
    _, html = served(page, AERO)
    expect(page.locator(".product__price")).to_have_text("$129.00")  # no offer yet: as the shop sent it
    assert "data-nudge-priced" not in html

    redeem_sneakers_offer(page)
    response, html = served(page, AERO)
    assert "x-nudge-offer-applied" not in response.headers  # the shop left the page at list price
    assert ('<s class="nudge-was"><span class="nudge-sr">was </span>$129.00</s>'
            '<span class="nudge-now">$116.10</span>') in html
    price = page.locator(".product__price [data-nudge-price]")
    expect(price.locator("s.nudge-was")).to_have_text("was $129.00")
    expect(price.locator("s.nudge-was")).to_have_css("text-decoration-line", "line-through")
    expect(price.locator(".nudge-now")).to_have_text("$116.10")
    expect(page.locator(".product__price")).not_to_contain_text("$104.49")

    _, html = served(page, SNEAKERS)  # every card of the collection
    cards = page.locator("[data-testid=product-card]")
    expect(cards.locator(".nudge-now")).to_have_count(cards.count())
    aero = cards.filter(has_text="Aero Runner")
    expect(aero.locator(".nudge-was")).to_have_text("was $129.00")
    expect(aero.locator(".nudge-now")).to_have_text("$116.10")
    court = cards.filter(has_text="Court Classic")
    expect(court.locator(".nudge-now")).to_have_text("$80.10")

    page.goto("/collections/boots")  # another category: prices as the shop sent them
    expect(page.locator(".nudge-was")).to_have_count(0)
    assert cart_total(page, AERO) == "$116.10"  # the price nudge showed is the one the cart charges


def test_rewriting_leaves_other_categories_prices_alone(honoured_page: Page) -> None:
    page = honoured_page
    redeem_sneakers_offer(page)
    page.goto(AERO)  # "Goes well with": socks and the cleaning kit, not sneakers
    related = page.locator("section[aria-labelledby=related] [data-testid=product-card]")
    expect(related.filter(has_text="Merino Crew Socks").locator("[data-testid=card-price]")).to_have_text("$24.00")
    expect(related.locator(".nudge-was")).to_have_count(0)


def test_shop_that_applies_the_offer_itself_is_not_discounted_twice(page: Page) -> None:
    redeem_sneakers_offer(page)
    response, html = served(page, AERO)
    assert response.headers.get("x-nudge-offer-applied") == "1"  # the shop priced it
    assert "data-nudge-priced" not in html and 'class="nudge-was"' not in html
    price = page.locator(".product__price")
    expect(price.locator("[data-testid=discounted-price]")).to_have_text("$116.10")
    assert price.inner_text().count("$116.10") == 1
    assert "$104.49" not in page.locator("body").inner_text()
    page.goto(SNEAKERS)
    expect(page.locator(".nudge-now")).to_have_count(0)
    aero = page.locator("[data-testid=product-card]").filter(has_text="Aero Runner")
    expect(aero.locator("[data-testid=card-discounted-price]")).to_have_text("$116.10")


# -- strict Content-Security-Policy ---------------------------------------------------------------

CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__reportCsp(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile);
});
"""


def nonce_of(response: Response) -> str:
    match = re.search(r"'nonce-([^']+)'", response.headers.get("content-security-policy", ""))
    assert match, "the shop sends a nonce-based policy"
    return match.group(1)


def test_strict_csp_page_gets_nudges_and_no_violation(browser: Browser, strict_csp_stack: Stack) -> None:
    violations: list[str] = []
    console: list[str] = []
    with clocked_page(browser, strict_csp_stack) as page:
        page.expose_function("__reportCsp", lambda text: violations.append(text))
        page.add_init_script(CSP_LISTENER)
        page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)

        first, html = served(page, AERO)
        nonce = nonce_of(first)
        assert f'<style id="nudge-style" nonce="{nonce}">' in html
        assert re.search(rf'<script src="/_nudge/client\.js\?v=\w+" defer nonce="{nonce}"></script>', html)
        second, html = served(page, AERO)
        assert nonce_of(second) != nonce and f'nonce="{nonce_of(second)}"' in html  # a fresh one, reused

        recs = page.locator(RECS)
        expect(recs).to_be_visible()
        expect(recs.locator("ul")).to_have_css("display", "grid")  # our stylesheet applied
        expect(recs.locator("ul")).to_have_css("list-style-type", "none")

        redeem_sneakers_offer(page)  # the exit-intent modal needs our client script to have run
        page.goto(AERO)
        expect(page.locator("[data-testid=discounted-price]")).to_have_text("$116.10")
        page.wait_for_timeout(100)
    assert violations == []
    assert console == []


# -- scroll and inactivity triggers ---------------------------------------------------------------


def scroll_to_percent(page: Page, percent: int) -> None:
    scroll_to(page, page.evaluate("(p) => (document.documentElement.scrollHeight - innerHeight) * p / 100", percent))


def test_scroll_rule_reveals_halfway_down_the_accessories(page: Page) -> None:
    page.set_viewport_size({"width": 1280, "height": 320})  # the collection is about 800 px tall
    _, html = served(page, "/collections/accessories")
    assert in_initial_html(html, "accessories-scroll-tip")  # rendered by the edge, hidden
    tip = page.locator(SCROLL_TIP)
    assert page.evaluate("document.documentElement.scrollHeight - innerHeight") > 200  # room to scroll
    expect(tip).to_be_hidden()
    page.clock.fast_forward("00:30")  # time alone does nothing
    expect(tip).to_be_hidden()
    scroll_to_percent(page, 30)
    expect(tip).to_be_hidden()
    scroll_to_percent(page, 55)
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Keep them like new")
    expect(tip.get_by_role("link", name="See the care kits")).to_have_attribute("href", KIT)

    page.goto("/collections/boots")
    expect(page.locator(SCROLL_TIP)).to_have_count(0)  # accessories only


def test_inactivity_rule_waits_for_thirty_seconds_without_input(page: Page) -> None:
    add_to_cart(page, LACES)
    _, html = served(page, "/cart")
    assert in_initial_html(html, "cart-idle-help")
    help_ = page.locator(IDLE_HELP)
    expect(help_).to_be_hidden()
    page.clock.fast_forward("00:20")
    expect(help_).to_be_hidden()
    page.mouse.move(300, 300)
    page.mouse.move(320, 340, steps=3)  # the shopper is still there
    page.clock.fast_forward("00:20")  # 40 s on the page, 20 s since the last input
    expect(help_).to_be_hidden()
    page.keyboard.press("Shift")
    page.clock.fast_forward("00:29")
    expect(help_).to_be_hidden()
    with page.expect_response(lambda r: "/_nudge/beacon" in r.url) as shown:
        page.clock.fast_forward("00:02")  # 31 s without input
    expect(help_).to_be_visible()
    expect(help_).to_contain_text("Questions about sizing?")
    expect(help_.get_by_role("link", name="Back to sneakers")).to_have_attribute("href", SNEAKERS)
    assert shown.value.status == 204

    _, html = served(page, "/cart")  # per_session = 1: once per visit
    assert not in_initial_html(html, "cart-idle-help")


# -- mobile exit intent: back to the tab after a pause ----------------------------------------------


def test_mobile_exit_intent_on_returning_to_the_tab_after_five_seconds(phone: Page) -> None:  # noqa: F811
    browse_pairs(phone, 3, "05:01")
    set_tab_hidden(phone, True)
    phone.clock.fast_forward("00:06")
    set_tab_hidden(phone, False)
    expect(phone.locator(MODAL)).to_be_visible()
    expect(phone.locator(MODAL)).to_contain_text("Still thinking?")


def test_a_short_tab_switch_on_mobile_is_not_exit_intent(phone: Page) -> None:  # noqa: F811
    browse_pairs(phone, 3, "05:01")
    set_tab_hidden(phone, True)
    phone.clock.fast_forward("00:03")
    set_tab_hidden(phone, False)
    phone.wait_for_timeout(100)
    expect(phone.locator(MODAL)).to_be_hidden()
    set_tab_hidden(phone, True)  # a longer absence afterwards still counts
    phone.clock.fast_forward(5500)
    set_tab_hidden(phone, False)
    expect(phone.locator(MODAL)).to_be_visible()


# -- accessibility and layout stability -----------------------------------------------------------


def test_inline_kinds_have_no_axe_violations(page: Page, context: BrowserContext, stack: Stack) -> None:
    returning_sneaker_fan(page, context, stack)
    page.goto("/")
    expect(page.locator(HERO)).to_be_visible()
    assert axe_violations(page, HERO) == []

    page.goto(AERO)
    expect(page.locator(RECS)).to_be_visible()
    assert axe_violations(page, RECS) == []

    add_to_cart(page, LACES)
    page.goto("/cart")
    expect(page.locator(SHIPPING_BADGE)).to_be_visible()
    assert axe_violations(page, SHIPPING_BADGE) == []
    assert axe_violations(page, RECS) == []
    page.clock.fast_forward("00:31")
    expect(page.locator(IDLE_HELP)).to_be_visible()
    assert axe_violations(page, IDLE_HELP) == []

    page.set_viewport_size({"width": 1280, "height": 320})
    page.goto("/collections/accessories")
    scroll_to_percent(page, 60)
    expect(page.locator(SCROLL_TIP)).to_be_visible()
    assert axe_violations(page, SCROLL_TIP) == []


def settled_shift(page: Page, path: str, selector: str) -> float:
    """Total layout shift of a page load, after scrolling `selector` into view and its images loading."""
    page.goto(path)
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_function("(sel) => [...document.querySelectorAll(sel + ' img')].every(i => i.complete)", arg=selector)
    page.wait_for_timeout(200)
    return layout_shift(page)


def test_inline_kinds_shift_nothing(page: Page, context: BrowserContext, stack: Stack) -> None:
    page.add_init_script(CLS_OBSERVER)
    returning_sneaker_fan(page, context, stack)
    assert settled_shift(page, "/", HERO) == 0
    assert settled_shift(page, AERO, RECS) == 0
    add_to_cart(page, LACES)
    assert settled_shift(page, "/cart", SHIPPING_BADGE) == 0
    assert settled_shift(page, "/cart", RECS) == 0
