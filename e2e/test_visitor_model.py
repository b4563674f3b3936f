"""The visitor model seen from a real browser: cart events, consent, forget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from nudge.signing import Signer
from nudge.visitor.attributes import visitor_attributes
from nudge.visitor.pages import Page as PageKind
from nudge.visitor.session import Session, SessionCodec

from .conftest import SECRET, Stack, shop_behind_edge

CODEC = SessionCodec(Signer([SECRET.encode()], "session"))
PRODUCT = "/collections/sneakers/products/aero-runner"


def session_of(context: BrowserContext) -> Session | None:
    value = next((c["value"] for c in context.cookies() if c["name"] == "nudge"), None)
    return CODEC.decode(value) if value else None


def test_cart_post_seen_at_the_edge_changes_the_cart_attributes(page: Page, context: BrowserContext) -> None:
    page.goto(PRODUCT)  # nudge reads the product's price from its JSON-LD as the page streams
    price = float(page.locator("[data-testid=price]").get_attribute("data-price") or 0)
    # The edge counts the cart POST. The client still relays the GA4 add_to_cart the shop also
    # pushes (a [cart] route that never matched must not leave nudge blind); once the edge has
    # seen the cart this visit, the edge ignores those events, so the item counts once.
    assert page.evaluate("window.__nudge.cartEvents") is True
    with page.expect_response(lambda r: "/cart/add" in r.url and r.request.method == "POST"):
        page.locator("[data-testid=add-to-cart]").click()  # the shop also pushes GA4 add_to_cart
    expect(page.locator("[data-testid=cart-count]")).to_have_text("1")  # the shop's page has taken it in
    session = session_of(context)
    assert session is not None
    cart = visitor_attributes(session, PageKind("product", "sneakers"), None, session.last_seen)["cart"]
    assert cart["items"] == 1 and cart["lines"] == 1 and cart["value"] == price
    assert cart["age_minutes"] == 0
    page.goto(PRODUCT)  # the edge has seen the cart: the client stops relaying cart events
    assert page.evaluate("window.__nudge.cartEvents") is False


def test_forget_erases_the_visitor(page: Page, context: BrowserContext) -> None:
    page.goto(PRODUCT)
    assert session_of(context) is not None
    r = page.request.post("/_nudge/forget")
    assert r.status == 200 and r.json()["erased"]["cookies"] == ["nudge"]
    assert session_of(context) is None
    page.goto(PRODUCT)  # a fresh visitor from here on
    fresh = session_of(context)
    assert fresh is not None and fresh.pages == 1


@pytest.fixture(scope="module")
def opt_in_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with shop_behind_edge(tmp_path_factory.mktemp("kv-opt-in"), "--var", "NUDGE_CONSENT:opt-in",
                          "--var", "NUDGE_CONSENT_COOKIE:shop_consent") as s:
        yield s


def test_opt_in_tracks_nothing_until_consent(browser: Browser, opt_in_stack: Stack) -> None:
    context = browser.new_context(base_url=opt_in_stack.edge)
    try:
        page = context.new_page()
        for path in ("/", "/collections/sneakers", PRODUCT):
            page.goto(path)
            expect(page.locator("[data-testid=add-to-cart], [data-testid=product-card]").first).to_be_visible()
        beacons: list[str] = []
        page.on("request", lambda r: beacons.append(r.url) if "/_nudge/" in r.url else None)
        with page.expect_response(lambda r: r.request.method == "POST" and "/cart/add" in r.url) as added:
            page.locator("[data-testid=add-to-cart]").click()
        assert added.value.ok  # its answer (and any cookie it sets) is in
        assert [c["name"] for c in context.cookies() if c["name"].startswith("nudge")] == []
        assert beacons == []  # the client reports nothing without consent
        context.add_cookies([{"name": "shop_consent", "value": "granted", "url": opt_in_stack.edge}])
        page.goto(PRODUCT)
        session = session_of(context)
        assert session is not None and session.pages == 1  # counting starts at consent, not before
    finally:
        context.close()


def test_data_nudge_event_attributes_report_events_without_a_datalayer(page: Page, context: BrowserContext) -> None:
    """Issue 15: a `purchase` the page reports is relayed and measured as unverified, but moves no
    order or revenue (those come from the shop's X-Nudge-Order); `begin_checkout` still counts."""
    page.goto("/")
    page.evaluate("""() => {
        for (const [name, event] of [['Report checkout', 'begin_checkout'], ['Report purchase', 'purchase']]) {
            const b = document.createElement('button');
            b.textContent = name;
            b.setAttribute('data-nudge-event', event);
            b.setAttribute('data-nudge-value', '48.00');
            document.body.prepend(b);
        }
    }""")
    for name in ("Report checkout", "Report purchase"):
        with page.expect_response(lambda r: "/_nudge/beacon" in r.url and r.request.method == "POST") as beacon:
            page.get_by_role("button", name=name).click()
        assert beacon.value.status == 204
    session = session_of(context)
    assert session is not None and session.checkout_started and session.reported == 2
    assert session.orders == 0 and session.revenue == 0


def test_cart_is_right_without_javascript(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(base_url=stack.edge, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(PRODUCT)
        page.locator("[data-testid=add-to-cart]").click()  # a plain form POST to /cart/add, then 303
        page.wait_for_load_state()
        expect(page.locator("[data-testid=cart-count]")).to_have_text("1")
        session = session_of(context)
        assert session is not None and session.cart_items == 1 and session.cart_value == 12900
    finally:
        context.close()


@pytest.fixture(scope="module")
def datalayer_cart_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with shop_behind_edge(tmp_path_factory.mktemp("kv-datalayer"), "--var", "NUDGE_EDGE_CART:off") as s:
        yield s


def test_ga4_add_to_cart_changes_the_cart_attributes(browser: Browser, datalayer_cart_stack: Stack) -> None:
    context = browser.new_context(base_url=datalayer_cart_stack.edge)
    try:
        page = context.new_page()
        page.goto(PRODUCT)
        price = float(page.locator("[data-testid=price]").get_attribute("data-price") or 0)
        with page.expect_response(lambda r: "/_nudge/beacon" in r.url and r.request.method == "POST") as beacon:
            page.locator("[data-testid=add-to-cart]").click()  # the shop pushes GA4 add_to_cart
        assert beacon.value.status == 204  # its answer carries the session cookie
        session = session_of(context)
        assert session is not None
        cart = visitor_attributes(session, PageKind("product", "sneakers"), None, session.last_seen)["cart"]
        assert cart["items"] == 1 and cart["value"] == price
    finally:
        context.close()


def test_gtag_event_form_changes_the_cart_attributes(browser: Browser, datalayer_cart_stack: Stack) -> None:
    """GA4's other form: gtag('event', name, params) pushes its arguments object, params unwrapped."""
    context = browser.new_context(base_url=datalayer_cart_stack.edge)
    try:
        page = context.new_page()
        page.goto(PRODUCT)
        with page.expect_response(lambda r: "/_nudge/beacon" in r.url and r.request.method == "POST") as beacon:
            page.evaluate("""() => {
                function gtag() { window.dataLayer.push(arguments); }
                gtag('config', 'G-TEST', { user_id: 'not-an-identity' });
                gtag('event', 'add_to_cart', { currency: 'USD', value: 258.0,
                                               items: [{ item_id: 'aero-runner', quantity: 2 }] });
            }""")
        assert beacon.value.status == 204
        session = session_of(context)
        assert session is not None and session.identity is None  # a gtag user_id is no identity
        cart = visitor_attributes(session, PageKind("product", "sneakers"), None, session.last_seen)["cart"]
        assert cart["items"] == 2 and cart["value"] == 258.0
    finally:
        context.close()
