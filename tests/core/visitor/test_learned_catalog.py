from __future__ import annotations

import msgpack

from nudge.rules.load import load_ruleset
from nudge.visitor.learned_catalog import LearnedCatalog, decode_facts, encode_facts
from nudge.visitor.product_facts import ProductFacts
from tests.core.factories import make_app

FACTS = ProductFacts("SNK-001", "Aero Runner", 129.0, "USD", "sneakers", "Stride")


def test_facts_round_trip_and_bad_data() -> None:
    assert decode_facts(encode_facts(FACTS)) == FACTS
    for bad in (None, b"", b"\xc1", msgpack.packb([2, "x"]), msgpack.packb([1, 5, None, None, None, None, None]),
                msgpack.packb([1, "x"])):
        assert decode_facts(bad) is None


def test_catalog_remembers_recent_products_and_reports_changes() -> None:
    c = LearnedCatalog(size=2)
    assert c.remember("a", FACTS) and not c.remember("a", FACTS)
    c.remember("b", FACTS)
    c.get("a")  # a is now the most recently used
    c.remember("c", FACTS)
    assert c.get("b") is None and c.get("a") == FACTS and c.get("c") == FACTS


def test_price_by_product_id() -> None:
    c = LearnedCatalog(size=1)
    c.remember("aero-runner", FACTS)
    assert c.price_of("SNK-001") == 129.0 and c.price_of("SNK-999") is None
    c.remember("other", ProductFacts("X-1", price=5.0))  # evicts aero-runner
    assert c.price_of("SNK-001") is None and c.price_of("X-1") == 5.0
    c.remember("other", ProductFacts("X-1"))  # read again, without a price
    assert c.price_of("X-1") is None


PAGES = {"pages.toml": '[[page]]\ntype = "home"\npattern = "/"\n'}
OSCAR_FEED = """
[[product]]
id = "trail-runner"
sku = "1"
name = "Trail Runner"
url = "/catalogue/trail-runner_1/"
category = "sneakers"
price = 129.0

[[product]]
id = "no-price"
sku = "2"
name = "No price"
url = "/catalogue/no-price_2/"
category = "sneakers"
"""


def test_a_price_the_pages_do_not_carry_comes_from_the_feed_by_sku() -> None:
    """Django Oscar's pages carry no price facts; its add-to-basket posts the product's pk, which
    rules/catalog.toml lists as the sku."""
    learned = LearnedCatalog()
    assert make_app(PAGES).item_price(learned, "1") is None
    engine = make_app({**PAGES, "catalog.toml": OSCAR_FEED})
    assert engine.item_price(learned, "1") == 129.0 and engine.item_price(learned, "2") is None
    assert engine.item_price(learned, "trail-runner") is None  # by sku, not by product id
    learned.remember("trail-runner", ProductFacts("1", price=119.0))  # the page's own price wins
    assert engine.item_price(learned, "1") == 119.0
    learned.remember("trail-runner", ProductFacts("1"))  # facts without a price: the feed's
    assert engine.item_price(learned, "1") == 129.0


def test_newly_published_rules_price_carts_from_their_own_feed() -> None:
    engine, learned = make_app(), LearnedCatalog()
    aero = engine.ruleset.catalog.get("aero-runner")
    assert aero is not None and engine.item_price(learned, aero.sku) == aero.price
    published = engine.with_ruleset(load_ruleset(PAGES), "v2")
    assert published.item_price(learned, aero.sku) is None
    assert engine.item_price(learned, aero.sku) == aero.price  # a request that began with the old rules keeps them
