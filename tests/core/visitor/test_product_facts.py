from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.visitor.product_facts import MAX_SCRIPT_CHARS, MAX_SCRIPTS, ProductFacts, ProductFactsCollector

Meta = Iterable[tuple[str | None, str | None]]


def collect(*scripts: str, meta: Meta = ()) -> ProductFacts | None:
    """Facts from whole scripts (one chunk each) and meta tags, as the edge would feed them."""
    collector = ProductFactsCollector()
    for prop, content in meta:
        collector.feed_meta(prop, content)
    for script in scripts:
        collector.feed_json_ld(script, True)
    return collector.facts()


def collect_split(text: str, cuts: Iterable[int]) -> ProductFacts | None:
    """Facts from one script delivered in chunks cut at the given offsets."""
    points = sorted({c for c in cuts if 0 < c < len(text)})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    collector = ProductFactsCollector()
    for i, chunk in enumerate(chunks):
        collector.feed_json_ld(chunk, i == len(chunks) - 1)
    return collector.facts()


def product(**fields: Any) -> str:
    return json.dumps({"@context": "https://schema.org", "@type": "Product", **fields})


# -- realistic JSON-LD -----------------------------------------------------------------------------

# What demo_shop/app.py's product_jsonld renders for SNK-001 through Jinja's |tojson.
DEMO_SHOP = (
    '{"@context": "https://schema.org", "@type": "Product", "sku": "SNK-001", "name": "Aero Runner", '
    '"description": "A breathable mesh runner with a springy foam sole for daily miles.", '
    '"brand": {"@type": "Brand", "name": "Stride"}, "category": "sneakers", "offers": {"@type": "Offer", '
    '"price": "129.00", "priceCurrency": "USD", "availability": "https://schema.org/InStock"}}'
)
DEMO_SHOP_META = [
    ("og:type", "product"), ("og:title", "Aero Runner"), ("og:site_name", "Stride &amp; Co."),
    ("product:brand", "Stride"), ("product:category", "sneakers"), ("product:retailer_item_id", "SNK-001"),
    ("product:price:amount", "129.00"), ("product:price:currency", "USD"),
]
DEMO_SHOP_FACTS = ProductFacts("SNK-001", "Aero Runner", 129.0, "USD", "sneakers", "Stride")

SHOPIFY = r"""
{
  "@context": "http://schema.org/",
  "@type": "Product",
  "name": "Classic Leather Jacket",
  "url": "https:\/\/northwind.example\/products\/classic-leather-jacket?variant=4211",
  "image": ["https:\/\/cdn.shopify.example\/files\/jacket.jpg?v=1"],
  "description": "<p>Soft lambskin with a quilted lining.<\/p>",
  "sku": "CLJ-BLK-M",
  "brand": {"@type": "Brand", "name": "Northwind"},
  "offers": [
    {"@type": "Offer", "sku": "CLJ-BLK-M", "availability": "http:\/\/schema.org\/InStock",
     "price": 1299.0, "priceCurrency": "EUR",
     "url": "https:\/\/northwind.example\/products\/classic-leather-jacket?variant=4211"},
    {"@type": "Offer", "sku": "CLJ-BLK-L", "availability": "http:\/\/schema.org\/OutOfStock",
     "price": 1349.0, "priceCurrency": "EUR"}
  ]
}
"""
SHOPIFY_SKU_ON_OFFER = r"""
{"@context":"http://schema.org/","@type":"Product","name":"Organic Tee \u2013 White",
 "brand":{"@type":"Brand","name":"Basics Co"},
 "offers":[{"@type":"Offer","sku":"TEE-WHT-S","price":"25.00","priceCurrency":"usd"}]}
"""
WOOCOMMERCE_GRAPH = r"""
{"@context":"https:\/\/schema.org\/","@graph":[
 {"@context":"https:\/\/schema.org\/","@type":"BreadcrumbList","itemListElement":[
  {"@type":"ListItem","position":1,"item":{"name":"Home","@id":"https:\/\/woo.example"}},
  {"@type":"ListItem","position":2,
   "item":{"name":"Hoodies","@id":"https:\/\/woo.example\/product-category\/hoodies\/"}}]},
 {"@context":"https:\/\/schema.org\/","@type":"Product",
  "@id":"https:\/\/woo.example\/product\/hoodie-with-logo\/#product",
  "name":"Hoodie with Logo","url":"https:\/\/woo.example\/product\/hoodie-with-logo\/",
  "description":"Pellentesque habitant morbi tristique.","sku":15,
  "offers":[{"@type":"Offer","price":"45.00","priceValidUntil":"2026-12-31",
   "priceSpecification":{"price":"45.00","priceCurrency":"USD","valueAddedTaxIncluded":"false"},
   "priceCurrency":"USD","availability":"http:\/\/schema.org\/InStock",
   "seller":{"@type":"Organization","name":"Woo Shop","url":"https:\/\/woo.example"}}]}]}
"""
WOOCOMMERCE_VARIABLE = r"""
{"@context":"https:\/\/schema.org\/","@graph":[{"@type":"Product","name":"Hoodie","sku":"woo-hoodie",
 "offers":[{"@type":"AggregateOffer","lowPrice":"42.00","highPrice":"45.00","offerCount":3,
  "priceCurrency":"USD","availability":"http:\/\/schema.org\/InStock"}]}]}
"""
WOOCOMMERCE_PRICE_SPEC_ONLY = r"""
{"@context":"https:\/\/schema.org\/","@graph":[{"@type":"Product","name":"Beanie","sku":"woo-beanie",
 "offers":[{"@type":"Offer","priceSpecification":[{"@type":"UnitPriceSpecification","price":"18.00",
  "priceCurrency":"GBP","valueAddedTaxIncluded":true}]}]}]}
"""
MAGENTO = """
{
    "@context": "http://schema.org",
    "@type": "http://schema.org/Product",
    "name": "Joust Duffle Bag",
    "sku": "24-MB01",
    "mpn": "MB01",
    "category": "Gear > Bags",
    "brand": "Luma",
    "description": "The sporty Joust Duffle Bag can't be beat.",
    "offers": {"@type": "Offer", "priceCurrency": "USD", "price": 34,
               "availability": "http://schema.org/InStock"}
}
"""
SCHEMA_ORG_AGGREGATE_OFFER = """
{
  "@context": "https://schema.org/",
  "@type": "Product",
  "name": "Executive Anvil",
  "image": ["https://example.com/photos/1x1/photo.jpg"],
  "description": "Sleeker than ACME's Classic Anvil, the Executive Anvil is perfect for the traveler.",
  "sku": "0446310786",
  "mpn": "925872",
  "brand": {"@type": "Brand", "name": "ACME"},
  "aggregateRating": {"@type": "AggregateRating", "ratingValue": "4.4", "reviewCount": "89"},
  "offers": {"@type": "AggregateOffer", "offerCount": "5", "lowPrice": "119.99", "highPrice": "199.99",
             "priceCurrency": "USD"}
}
"""
PRODUCT_GROUP = """
{
  "@context": "https://schema.org/",
  "@type": "ProductGroup",
  "name": "Wool winter coat",
  "url": "https://www.example.com/coat",
  "brand": {"@type": "Brand", "name": "Good brand"},
  "productGroupID": "44E01",
  "variesBy": ["https://schema.org/size", "https://schema.org/color"],
  "hasVariant": [
    {"@type": "Product", "sku": "44E01-M11000", "gtin14": "98766051104214", "name": "Small green coat",
     "size": "small", "color": "Green",
     "offers": {"@type": "Offer", "priceCurrency": "USD", "price": 39.99,
                "itemCondition": "https://schema.org/NewCondition"}},
    {"@type": "Product", "sku": "44E01-K11000", "name": "Small dark blue coat",
     "offers": {"@type": "Offer", "priceCurrency": "USD", "price": 49.99}}
  ]
}
"""
TYPE_LIST_IN_LIST = """
[
  {"@context": "https://schema.org", "@type": "Organization", "name": "Books Ltd",
   "url": "https://books.example"},
  {"@context": "https://schema.org", "@type": ["Product", "Book"], "productID": "isbn:9780131103627",
   "name": "The C Programming Language", "category": "Books/Computing/Programming Languages",
   "brand": [{"@type": "Organization", "name": "Prentice Hall"}],
   "offers": {"@type": "Offer", "price": "1,299.00", "priceCurrency": "INR"}}
]
"""
ITEM_PAGE = """
{"@context": "https://schema.org", "@type": "ItemPage", "name": "Kettle | Home Goods",
 "mainEntity": {"@type": "schema:Product", "gtin13": "4006381333931", "name": "Stovetop Kettle",
                "category": "Kitchen › Kettles",
                "offers": {"@type": "Offer", "price": 0, "priceCurrency": "CHF"}}}
"""

JSON_LD_CASES = [
    pytest.param(DEMO_SHOP, DEMO_SHOP_FACTS, id="demo-shop"),
    pytest.param(SHOPIFY, ProductFacts("CLJ-BLK-M", "Classic Leather Jacket", 1299.0, "EUR",
                                       brand="Northwind"), id="shopify"),
    pytest.param(SHOPIFY_SKU_ON_OFFER, ProductFacts("TEE-WHT-S", "Organic Tee – White", 25.0, "USD",
                                                    brand="Basics Co"), id="shopify-sku-on-offer"),
    pytest.param(WOOCOMMERCE_GRAPH, ProductFacts("15", "Hoodie with Logo", 45.0, "USD"),
                 id="woocommerce-graph"),
    pytest.param(WOOCOMMERCE_VARIABLE, ProductFacts("woo-hoodie", "Hoodie", 42.0, "USD"),
                 id="woocommerce-variable"),
    pytest.param(WOOCOMMERCE_PRICE_SPEC_ONLY, ProductFacts("woo-beanie", "Beanie", 18.0, "GBP"),
                 id="woocommerce-price-specification"),
    pytest.param(MAGENTO, ProductFacts("24-MB01", "Joust Duffle Bag", 34.0, "USD", "bags", "Luma"),
                 id="magento"),
    pytest.param(SCHEMA_ORG_AGGREGATE_OFFER, ProductFacts("0446310786", "Executive Anvil", 119.99, "USD",
                                                          brand="ACME"), id="aggregate-offer"),
    pytest.param(PRODUCT_GROUP, ProductFacts("44E01", "Wool winter coat", 39.99, "USD", brand="Good brand"),
                 id="product-group"),
    pytest.param(TYPE_LIST_IN_LIST, ProductFacts("isbn:9780131103627", "The C Programming Language", 1299.0,
                                                 "INR", "programming languages", "Prentice Hall"),
                 id="type-list-in-list"),
    pytest.param(ITEM_PAGE, ProductFacts("4006381333931", "Stovetop Kettle", 0.0, "CHF", "kettles"),
                 id="item-page"),
    pytest.param("<!--\n" + DEMO_SHOP + "\n-->", DEMO_SHOP_FACTS, id="comment-wrapped"),
    pytest.param("\n//<![CDATA[\n" + DEMO_SHOP + "\n//]]>\n", DEMO_SHOP_FACTS, id="cdata-wrapped"),
]


@pytest.mark.parametrize(("text", "expected"), JSON_LD_CASES)
def test_json_ld_in_one_chunk(text: str, expected: ProductFacts) -> None:
    assert collect(text) == expected


@pytest.mark.parametrize(("text", "expected"), JSON_LD_CASES)
@given(data=st.data())
def test_json_ld_split_anywhere_gives_the_same_facts(
    text: str, expected: ProductFacts, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(text)), max_size=30))
    assert collect_split(text, cuts) == expected


@pytest.mark.parametrize(("text", "expected"), JSON_LD_CASES)
def test_json_ld_one_character_per_chunk_then_an_empty_last_chunk(text: str, expected: ProductFacts) -> None:
    collector = ProductFactsCollector()
    for char in text:
        collector.feed_json_ld(char, False)
    collector.feed_json_ld("", True)
    assert collector.facts() == expected


def test_demo_shop_page_with_its_meta_tags() -> None:
    assert collect(DEMO_SHOP, meta=DEMO_SHOP_META) == DEMO_SHOP_FACTS
    assert collect(meta=DEMO_SHOP_META) == DEMO_SHOP_FACTS


# -- og:/product: meta fallback --------------------------------------------------------------------

FACEBOOK_CATALOG = [
    ("og:type", "product"), ("og:title", "Trail Sprint"), ("og:url", "https://shop.example/p/trail-sprint"),
    ("product:retailer_item_id", "SNK-003"), ("product:price:amount", "1,149.00"),
    ("product:price:currency", "EUR"), ("product:brand", "Summit"),
    ("product:category", "Apparel &amp; Accessories &gt; Shoes"),
]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (FACEBOOK_CATALOG, ProductFacts("SNK-003", "Trail Sprint", 1149.0, "EUR", "shoes", "Summit")),
        ([("og:type", "product.item"), ("og:product_id", "P-9"), ("og:price:amount", "9.5"),
          ("og:price:currency", "GBP")], ProductFacts("P-9", price=9.5, currency="GBP")),
        ([("OG:TYPE", " Product "), ("product:sku", "K-1"), ("og:title", "Socks &amp; Laces &lt;3")],
         ProductFacts("K-1", "Socks & Laces <3")),
        ([("og:type", "product"), ("product:retailer_item_id", "A"), ("product:retailer_item_id", "B"),
          ("product:price:amount", "5"), ("og:price:amount", "7")], ProductFacts("A", price=5.0)),
        ([("og:type", "product"), ("product:retailer_item_id", 'say "hi"'), ("product:item_group_id", "G-1")],
         ProductFacts("G-1")),
        ([("og:type", "product"), ("product:retailer_item_id", "x" * 49), ("product:item_group_id", "G-1")],
         ProductFacts("G-1")),
        ([("og:type", "product"), ("product:retailer_item_id", "A"), ("product:price:amount", "free"),
          ("product:price:currency", "dollars")], ProductFacts("A")),
        ([("og:type", "product"), ("og:title", "No id"), ("og:url", "https://shop.example/p/1")], None),
        ([("og:type", "website"), ("product:retailer_item_id", "A"), ("og:title", "Home")], None),
        ([("product:retailer_item_id", "A"), ("product:price:amount", "5")], None),
        ([(None, "product"), ("og:type", None), ("og:type", "product"), ("product:retailer_item_id", None),
          ("product:retailer_item_id", "A")], ProductFacts("A")),
        ([], None),
    ],
)
def test_meta_fallback(meta: Meta, expected: ProductFacts | None) -> None:
    assert collect(meta=meta) == expected


@pytest.mark.parametrize(
    ("script", "meta", "expected"),
    [
        (product(sku="J", name="From JSON-LD"), FACEBOOK_CATALOG,
         ProductFacts("J", "From JSON-LD", 1149.0, "EUR", "shoes", "Summit")),
        (product(name="No id in JSON-LD"), FACEBOOK_CATALOG,
         ProductFacts("SNK-003", "No id in JSON-LD", 1149.0, "EUR", "shoes", "Summit")),
        (product(sku="J", offers={"price": "3.00", "priceCurrency": "USD"}), FACEBOOK_CATALOG,
         ProductFacts("J", "Trail Sprint", 3.0, "USD", "shoes", "Summit")),
        (product(sku="J"), [("og:type", "article"), ("og:title", "Blog post")], ProductFacts("J")),
        (product(name="No id anywhere"), [("og:type", "product"), ("og:url", "https://shop.example/p")],
         None),
    ],
)
def test_json_ld_wins_and_meta_fills_the_gaps(script: str, meta: Meta, expected: ProductFacts | None) -> None:
    assert collect(script, meta=meta) == expected


# -- bad input: never raises, gives None or the facts that are sound ---------------------------------

DEEP_GRAPH = '{"@graph": ' * 12 + product(sku="DEEP") + "}" * 12
SHALLOW_GRAPH = '{"@graph": ' * 3 + product(sku="OK") + "}" * 3


@pytest.mark.parametrize(
    ("scripts", "expected"),
    [
        ([""], None),
        (["   \n "], None),
        (["{not json"], None),
        (['{"@type": "Product", "sku": "A",}'], None),
        (["null"], None),
        (["42"], None),
        (['"Product"'], None),
        (["[]"], None),
        (["<!-- -->"], None),
        (['{"@type": "Product", "name": "No id"}'], None),
        (['{"@type": "Offer", "sku": "A", "price": "1"}'], None),
        (['{"@type": 5, "sku": "A"}'], None),
        (['{"@type": ["Thing", null, 3], "sku": "A"}'], None),
        ([product(sku={"value": 1})], None),
        ([product(sku=True, productID=1.5, gtin=[1], mpn=None)], None),
        ([product(sku=-0.0, gtin13="4006381333931")], ProductFacts("4006381333931")),
        ([product(sku=12345)], ProductFacts("12345")),
        ([product(sku="x" * 49, mpn="M-1")], ProductFacts("M-1")),
        ([product(sku="", productID="   ", mpn=" M-2 ")], ProductFacts("M-2")),
        ([product(sku='<b>"1"</b>')], None),
        ([product(sku="A", name='<img src=x onerror="alert(1)">')],
         ProductFacts("A", '<img src=x onerror="alert(1)">')),
        ([product(sku="A", name="  Two\n\tlines\u0000here  ")], ProductFacts("A", "Two lines here")),
        ([product(sku="A", name="n" * 500, brand="b" * 500)], ProductFacts("A", "n" * 80, brand="b" * 48)),
        ([product(sku="A", name=5, brand=7, category={"x": 1}, offers="cheap")], ProductFacts("A")),
        ([product(sku="A", offers=[None, 1, "x", {"price": "n/a"}, {"price": "7", "priceCurrency": "€"}])],
         ProductFacts("A", price=7.0)),
        (['{"@type": "Product", "sku": "A", "offers": {"price": NaN, "priceCurrency": "USD"}}'],
         ProductFacts("A", currency="USD")),
        (['{"@type": "Product", "sku": "A", "offers": {"price": Infinity, "lowPrice": -Infinity}}'],
         ProductFacts("A")),
        (['{"@type": "Product", "sku": "A", "offers": {"price": 1e999}}'], ProductFacts("A")),
        (['{"@type": "Product", "sku": "A", "offers": {"price": ' + "9" * 5000 + "}}"], None),
        ([product(sku="A", offers={"highPrice": "$1495", "lowPrice": "$1250", "priceCurrency": "USD"})],
         ProductFacts("A", currency="USD")),
        ([DEEP_GRAPH], None),
        ([SHALLOW_GRAPH], ProductFacts("OK")),
        (["[" * 30_000 + "]" * 30_000], None),
        ([product(sku="A", brand=json.loads('{"name": ' * 20 + '"Deep"' + "}" * 20))], ProductFacts("A")),
        ([product(sku="A", offers=json.loads('{"offers": ' * 20 + '{"price": 1}' + "}" * 20))],
         ProductFacts("A")),
        ([product(sku="A", category=">" * 5000 + "/" * 5000)], ProductFacts("A")),
        ([product(sku="A", offers={"price": "1," * 5000})], ProductFacts("A")),
        (['{"@type": "ItemList", "itemListElement": [{"@type": "ListItem", "item": '
          + product(sku="A") + "}]}"], None),
        ([product(name="First, no id"), product(sku="SECOND")], None),
        ([product(sku="FIRST"), product(sku="SECOND")], ProductFacts("FIRST")),
        (["[" + product(sku="FIRST") + "," + product(sku="SECOND") + "]"], ProductFacts("FIRST")),
        (["{broken", '{"@type": "WebSite"}', product(sku="AFTER")], ProductFacts("AFTER")),
        (["junk"] * MAX_SCRIPTS + [product(sku="NINTH")], None),
        (["junk"] * (MAX_SCRIPTS - 1) + [product(sku="EIGHTH")], ProductFacts("EIGHTH")),
    ],
)
def test_bad_input_is_ignored_safely(scripts: list[str], expected: ProductFacts | None) -> None:
    assert collect(*scripts) == expected


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("129.00", 129.0),
        (" 12.50 ", 12.5),
        ("1,299.00", 1299.0),
        ("1,234,567", 1234567.0),
        ("0", 0.0),
        (19, 19.0),
        (9_999_999.99, 9_999_999.99),
        ("10000000", None),
        (10_000_000, None),
        (-5, None),
        ("-5", None),
        ("12,34", None),
        ("1,2345.00", None),
        ("1.2.3", None),
        ("$12", None),
        ("12 EUR", None),
        ("1e5", None),
        ("NaN", None),
        ("Infinity", None),
        ("", None),
        (True, None),
        ([12], None),
    ],
)
def test_prices(price: object, expected: float | None) -> None:
    assert collect(product(sku="A", offers={"price": price})) == ProductFacts("A", price=expected)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Sneakers", "sneakers"),
        ("Shoes > Sneakers", "sneakers"),
        ("Shoes/Sneakers/", "sneakers"),
        ("Home › Shoes › Running  Shoes", "running shoes"),
        ("Men | Boots", "boots"),
        ("https://shop.example/collections/boots", "boots"),
        (["Sale", "Boots"], "sale"),
        ([7, {"@type": "CategoryCode", "name": "Boots"}], "boots"),
        ("A" * 40, "a" * 32),
        (" > / ", None),
        (187, None),
        (None, None),
    ],
)
def test_categories_are_normalized(category: object, expected: str | None) -> None:
    assert collect(product(sku="A", category=category)) == ProductFacts("A", category=expected)


@pytest.mark.parametrize(
    ("brand", "expected"),
    [
        ("Acme", "Acme"),
        ({"@type": "Brand", "name": "Acme"}, "Acme"),
        ([{"@type": "Brand", "name": ""}, {"@type": "Organization", "name": "Acme"}], "Acme"),
        ([None, "Acme", "Other"], "Acme"),
        ({"@type": "Brand", "logo": "https://x.example/logo.png"}, None),
        ([], None),
    ],
)
def test_brand_shapes(brand: object, expected: str | None) -> None:
    assert collect(product(sku="A", brand=brand)) == ProductFacts("A", brand=expected)


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("USD", "USD"), (" eur ", "EUR"), ("US$", None), ("EURO", None), (978, None), ("ÜSD", None)],
)
def test_currencies(currency: object, expected: str | None) -> None:
    facts = collect(product(sku="A", offers={"price": "1", "priceCurrency": currency}))
    assert facts == ProductFacts("A", price=1.0, currency=expected)


def test_a_script_past_the_size_limit_is_dropped_but_the_next_one_is_read() -> None:
    huge = product(sku="HUGE") + " " * MAX_SCRIPT_CHARS
    assert collect(huge) is None
    assert collect_split(huge, range(0, len(huge), 1000)) is None
    assert collect(huge, product(sku="NEXT")) == ProductFacts("NEXT")
    exact = product(sku="EXACT")
    assert collect(exact + " " * (MAX_SCRIPT_CHARS - len(exact))) == ProductFacts("EXACT")


def test_unfinished_script_and_odd_chunks_are_ignored() -> None:
    collector = ProductFactsCollector()
    collector.feed_json_ld(None, False)  # type: ignore[arg-type]
    collector.feed_json_ld(product(sku="A"), False)  # the stream ended before `last`
    assert collector.facts() is None


def test_facts_is_repeatable() -> None:
    collector = ProductFactsCollector()
    collector.feed_json_ld(DEMO_SHOP, True)
    assert collector.facts() == collector.facts() == DEMO_SHOP_FACTS


# -- properties ------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
PRODUCT_KEYS = st.sampled_from(["@type", "@graph", "sku", "gtin13", "name", "brand", "category", "offers",
                                "price", "lowPrice", "priceCurrency", "hasVariant", "mainEntity"])


def assert_sound(facts: ProductFacts | None) -> None:
    if facts is None:
        return
    assert 0 < len(facts.id) <= 48
    assert facts.name is None or 0 < len(facts.name) <= 80
    assert facts.brand is None or 0 < len(facts.brand) <= 48
    assert facts.category is None or 0 < len(facts.category) <= 32
    assert facts.category is None or facts.category == facts.category.lower()
    assert facts.currency is None or re.fullmatch("[A-Z]{3}", facts.currency)
    assert facts.price is None or 0 <= facts.price < 10_000_000


@given(st.lists(st.tuples(st.text(max_size=200), st.booleans()), max_size=12))
def test_arbitrary_chunks_never_raise(chunks: list[tuple[str, bool]]) -> None:
    collector = ProductFactsCollector()
    for chunk, last in chunks:
        collector.feed_json_ld(chunk, last)
    assert_sound(collector.facts())


@given(st.dictionaries(PRODUCT_KEYS, JSON_VALUES, max_size=8), st.sampled_from(["Product", "ProductGroup"]))
def test_arbitrary_json_in_a_product_never_raises(fields: dict[str, Any], kind: str) -> None:
    offers = [fields.get("offers"), {"offers": fields}]
    node = {**fields, "@type": kind, "offers": offers, "hasVariant": [fields]}
    assert_sound(collect(json.dumps(node), json.dumps({"@graph": [fields, node]})))


@given(st.lists(st.tuples(st.text(max_size=30) | st.none(), st.text(max_size=120) | st.none()), max_size=12))
def test_arbitrary_meta_never_raises(meta: list[tuple[str | None, str | None]]) -> None:
    assert_sound(collect(meta=[("og:type", "product"), *meta]))
