"""`[site] prices`: the selectors nudge hands HTMLRewriter, checked before they get there
(price_selectors.py, rules/load.py)."""

from __future__ import annotations

import pytest

from nudge.delivery.price_selectors import (
    MAX_PRICE_SELECTORS,
    PriceSelector,
    offer_applies,
    scoped,
    selector_problem,
)
from nudge.rules.load import RuleError, load_ruleset
from tests.core.factories import repo_rule_files

PAGES = repo_rule_files()["pages.toml"]

# Each of these (and each narrowed by `scoped` to a category with a quote and a backslash) was
# handed to workerd 1.20261117's HTMLRewriter, which took it; tests/runtime/test_prices.py hands
# some of them over on every run.
ACCEPTED = [
    ".price", "span.woocommerce-Price-amount bdi", ".price > .woocommerce-Price-amount",
    ".price ins .woocommerce-Price-amount", ".price__regular .price-item--regular", ".price-item--sale",
    "#total", "*", "* > *", "div>p", "div  >  p", "div\n>\tp", "div :first-child", ":first-child",
    "P:FIRST-CHILD", "p:first-of-type", ".a.b#c[d]:first-child", "a:first-child:first-of-type", "*.a",
    "p:nth-of-type(3)", "p:nth-child(2n+1)", "p:nth-child(2n + 1)", "p:nth-child(2n -1)", "p:nth-child(-n+3)",
    "p:nth-child(+n+3)", "p:nth-child(n- 1)", "p:nth-child( odd )", "p:nth-child(EVEN)", "p:nth-child(-3)",
    "p:not(.a)", ":NOT(.a)", "p:not(*)", "p:not([x])", "p:not(div.a[x])", "p:not(:nth-child(2))",
    "[data-price]", "[ a ]", '[a=""]', "[a=b i]", '[a="b" s]', '[a="b"i]', '[ a = "b" ]', "p[a='x']",
    '[a|="en"]', "[data-x^=a]", "[data-x$='a']", '[data-x*="a"]', "[data-x~=a]", '[data-x="a,b"]',
    ".-a", ".--a", "._a", ".é", "-a", "a-", "_", " .a ",
]


@pytest.mark.parametrize("selector", ACCEPTED)
def test_selectors_htmlrewriter_takes_pass(selector: str) -> None:
    assert selector_problem(selector) is None
    assert selector_problem(scoped(selector.strip(), "sneakers")) is None


@pytest.mark.parametrize("selector, message", [
    # refused by HTMLRewriter: it would throw while the page streams
    ("", "empty"),
    ("  ", "empty"),
    ("a + b", "not '+'"),
    ("a ~ b", "not '~'"),
    ("p:last-child", ":last-child is not supported"),
    ("p:is(.a)", ":is is not supported"),
    ("p:has(.a)", ":has is not supported"),
    ("p::before", "pseudo-elements"),
    ("p:not(.a .b)", "one compound selector"),
    ("p:not()", "needs a selector inside"),
    (".a >", "ends with '>'"),
    ("> .a", "'>' must stand between two elements"),
    (".a,", "one selector per entry"),
    ("#1a", "'#' must be followed by a name"),
    (".-", "'.' must be followed by a name"),
    ("[ns|a]", "an attribute selector is"),
    ("[a=1]", "an attribute selector is"),
    ("[a=b x]", "an attribute selector is"),
    ("p:nth-child(- n+1)", "takes odd, even or An+B"),
    ("p:nth-child(2 n)", "takes odd, even or An+B"),
    ("p:nth-child(3n-)", "takes odd, even or An+B"),
    ("p:nth-child(2n+-1)", "takes odd, even or An+B"),
    ("''", "unexpected \"'\" at character 1"),
    # taken by HTMLRewriter but not by nudge: one selector per entry, and a plainer subset
    (".a, .b", "one selector per entry"),
    ("*|p", "namespaces"),
    ("p:not(.a, .b)", "one compound selector"),
    ("p:not(:not(.a))", ":not() inside :not()"),
    ("p:not( .a )", "unexpected ' '"),
    ("p:nth-child(2N+1)", "takes odd, even or An+B"),
    (".a\\:b", "backslash escapes"),
])
def test_selectors_htmlrewriter_refuses_are_named(selector: str, message: str) -> None:
    problem = selector_problem(selector)
    assert problem is not None and message in problem


def site(prices: str) -> tuple[PriceSelector, ...]:
    return load_ruleset({"pages.toml": PAGES, "site.toml": f"[site]\nprices = {prices}\n"}).settings.prices


def test_price_selectors_are_read_from_the_site_table() -> None:
    assert load_ruleset({"pages.toml": PAGES}).settings.prices == ()
    assert site('[" .price > .amount ", { selector = ".card", attribute = "data-price" }, { selector = "bdi" }]') == (
        PriceSelector(".price > .amount"), PriceSelector(".card", "data-price"), PriceSelector("bdi"))
    assert site("[]") == ()


@pytest.mark.parametrize("prices, message", [
    ('".price"', "expected list"),
    ("[1]", "entry 1: expected a CSS selector string"),
    ('[".a", "a + b"]', "entry 2 ('a + b'): HTMLRewriter takes only the descendant"),
    ('[""]', "entry 1 (''): empty"),
    ('[".a, .b"]', "one selector per entry"),
    ('[{ attribute = "data-price" }]', "entry 1: expected a selector, or"),
    ('[{ selector = ".a", attr = "x" }]', "unknown field 'attr'"),
    ('[{ selector = ".a", attribute = "" }]', "attribute must be an attribute name"),
    ('[{ selector = ".a", attribute = "data price" }]', "attribute must be an attribute name"),
    (f'[{", ".join(['".a"'] * (MAX_PRICE_SELECTORS + 1))}]', f"more than {MAX_PRICE_SELECTORS} selectors"),
    (f'["{"a " * 101}"]', "longer than 200 characters"),
])
def test_bad_price_selectors_name_file_line_and_entry(prices: str, message: str) -> None:
    text = f'[shop]\ncurrency = "GBP"\n\n[site]\nexclude = []\nprices = {prices}\n'
    with pytest.raises(RuleError) as caught:
        load_ruleset({"pages.toml": PAGES, "site.toml": text})
    assert str(caught.value).startswith("site.toml:6: site.prices: ") and message in str(caught.value)


def test_a_selector_is_narrowed_to_a_category_as_a_css_string() -> None:
    assert scoped(".price > .amount", "sneakers") == '.price > .amount[data-nudge-category="sneakers"]'
    assert scoped("*", 'a"b\\c') == '*[data-nudge-category="a\\"b\\\\c"]'


@pytest.mark.parametrize("page_matches, marked, applies", [
    (True, None, True),  # unmarked, on a page of the offer's category
    (False, None, False),  # unmarked, elsewhere
    (False, "sneakers", True),  # marked with the offer's category: on any page
    (True, "boots", False),  # marked with another: never
])
def test_the_offers_category_decides_which_prices_show_it(page_matches: bool, marked: str | None,
                                                           applies: bool) -> None:
    assert offer_applies("sneakers", page_matches, marked) is applies
