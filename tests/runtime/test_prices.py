"""Prices without nudge's markup on workerd: `[site] prices` names them as WooCommerce and Shopify's
Dawn write them, and nudge shows the discount where a cart that honours X-Nudge-Offer charges it,
reading the price from the element's text (price_text.py) or an attribute, and nowhere else."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from nudge_tools.traffic import HONOURED, publish, rules_with_shop
from tests.runtime.test_delivery import offer_cookie
from tests.runtime.test_worker import Edge, edge_in_front_of_origin

pytestmark = pytest.mark.runtime

# The recipes of docs/platforms.md, one read from an attribute, and selectors of every form
# price_selectors.py lets through (under an ancestor no page has): HTMLRewriter must take them all,
# as written on the offer's pages and narrowed to its category elsewhere.
PRICES = '''prices = [
  ".price > .woocommerce-Price-amount", ".price ins .woocommerce-Price-amount",
  ".price__regular .price-item--regular", ".price-item--sale",
  { selector = ".card-price", attribute = "data-price" },
  '.none p:nth-child(+n+3)', '.none p:nth-child(2n -1)', '.none [a|="en"]', '.none p:not(div.a[x])',
  '.none :NOT(.a)', '.none [a="b"i]', '.none .é > *', '.none p:nth-child( odd )', '.none [data-x~=a]',
  '.none P:FIRST-CHILD', '.none [ a = "b" ]',
]
'''
PLAIN = "/collections/{category}?markup=plain&n={n}"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """The repo's rules for a shop whose cart charges what X-Nudge-Offer says, and whose pages
    carry no nudge markup: `[site] prices` names its prices."""
    kv_dir, rules = tmp_path_factory.mktemp("kv"), rules_with_shop(tmp_path_factory.mktemp("rules"), HONOURED)
    site = rules / "site.toml"
    site.write_text(site.read_text() + PRICES)  # [site] is the file's last table
    publish(rules, kv_dir)
    with edge_in_front_of_origin(kv_dir) as e:
        yield e


def page(edge: Edge, category: str, cookie: str = "", query: str = "") -> tuple[str, int]:
    """A plain-markup collection page and the handler calls nudge counted for it."""
    before = len(page_lines(edge))
    with edge.client() as c:
        text = c.get(PLAIN.format(category=category, n=time.monotonic_ns()) + query,
                     headers={"cookie": cookie} if cookie else {}).text
    deadline = time.monotonic() + 5  # a page's line is printed once its body has gone through
    while not (mine := page_lines(edge)[before:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mine) == 1 and mine[0]["ended"] is True, edge.process.output()[-2000:]
    assert "HTMLRewriter refused" not in edge.process.output()
    return text, int(str(mine[0]["handlers"]))


def page_lines(edge: Edge) -> list[dict[str, object]]:
    return [json.loads(line) for line in edge.process.output().splitlines() if line.startswith('{"nudge":"page"')]


def amount(value: str, discounted: str = "") -> str:
    """WooCommerce's price markup, as the shop sent it or with nudge's discounted price after it."""
    mark = ' data-nudge-price-text=""' if discounted else ""
    return (f'<span class="woocommerce-Price-amount amount"{mark}><bdi>'
            f'<span class="woocommerce-Price-currencySymbol">&#36;</span>{value}</bdi>'
            f'{now(discounted) if discounted else ""}</span>')


def now(price: str) -> str:
    return f'<span class="nudge-now" data-nudge-price-new><span class="nudge-sr">now </span>{price}</span>'


def test_plain_prices_show_the_discount_on_the_offers_pages(edge: Edge) -> None:
    text, _ = page(edge, "sneakers", offer_cookie())
    # WooCommerce: the amount keeps the shop's own markup, struck through by nudge's style, and
    # the new price follows it; a sale's old price (<del>) and its screen-reader text stay as they are
    assert amount("129.00", "$116.10") in text and amount("99.00", "$89.10") in text
    assert f'<del aria-hidden="true">{amount("150.00")}</del>' in text
    assert "Original price was: &#36;150.00." in text and "Current price is: &#36;99.00." in text
    # Dawn: the price as the shop writes it (grouping, currency code); the compare-at price stays
    assert ('<span class="price-item price-item--regular" data-nudge-price-text="">\n  $1,299.00 USD\n'
            f'{now("$1,169.10 USD")}</span>') in text
    assert '<s class="price-item price-item--regular">$150.00</s>' in text
    assert f'<span class="price-item price-item--sale" data-nudge-price-text="">$89.00{now("$80.10")}</span>' in text
    # a price read from an attribute: replaced whole, as a marked one
    assert ('<span class="card-price" data-price="$24.00" data-nudge-priced=""><s class="nudge-was">'
            '<span class="nudge-sr">was </span>$24.00</s><span class="nudge-now">$21.60</span></span>') in text
    assert "[data-nudge-price-text]:has(>[data-nudge-price-new]){text-decoration:line-through}" in text  # the style


def test_what_is_not_one_price_of_the_offers_category_stays_as_it_is(edge: Edge) -> None:
    text, _ = page(edge, "sneakers", offer_cookie())
    assert '<span class="price-item price-item--regular" data-nudge-price-text="">Sold out</span>' in text
    assert ('<span class="price-item price-item--regular" data-nudge-category="accessories">$24.00</span>'
            in text)
    # a marked price inside a named element is priced once, as a marked one
    inner = re.search(r'data-nudge-price-text=""><span data-nudge-price="49.00" data-nudge-priced="">(.*?)</div>',
                      text)
    assert inner is not None and inner.group(1).count("nudge-now") == 1 and "$44.10" in inner.group(1)


def test_on_another_categorys_pages_only_prices_marked_with_the_offers_category_change(edge: Edge) -> None:
    text, calls = page(edge, "boots", offer_cookie())
    assert f'data-nudge-category="sneakers" data-nudge-price-text="">$50.00{now("$45.00")}</span>' in text
    assert text.count('<span class="nudge-now"') == 1 and "data-nudge-priced" not in text
    # the named selectors are narrowed to that category: one element and its text, not every price
    # (head, body, </body>, the end; the marked price the page rewriter sees; the element, its end
    # tag and its text: "$50.00" and HTMLRewriter's empty last chunk, or in more pieces)
    assert 4 + 1 + 2 + 2 <= calls <= 4 + 1 + 2 + 4


@pytest.mark.parametrize("query, cookie", [
    ("", ""),  # no offer
    ("&applied=1", offer_cookie()),  # the shop priced the page itself
])
def test_without_an_offer_to_show_no_price_is_read(edge: Edge, query: str, cookie: str) -> None:
    text, calls = page(edge, "sneakers", cookie, query)
    assert "data-nudge-price-text=" not in text and "nudge-now" not in text
    assert f'<p class="woo-regular price">{amount("129.00")}</p>' in text
    assert calls == 4  # head, body, </body>, the end: the price selectors are not even registered
