"""Product facts read from the page's own SEO markup, so a shop needs no integration beyond it.

The edge feeds HTMLRewriter callbacks here: text chunks of `application/ld+json` scripts and the
values of `og:`/`product:` meta tags. JSON-LD wins field by field; meta tags of a page that calls
itself a product fill the gaps. All input is untrusted and bounded: bad markup gives fewer facts
(or None), never an exception. Values are data, nothing is stripped: the renderer escapes them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nudge.visitor.session import MAX_ID_LENGTH, clean_id

MAX_SCRIPT_CHARS = 64 * 1024  # a larger script is dropped, not buffered
MAX_SCRIPTS = 8  # ld+json scripts per page we look at
MAX_DEPTH = 8  # nesting we follow through @graph, mainEntity, offers and brands
MAX_NAME, MAX_BRAND, MAX_CATEGORY, MAX_PRICE = 80, 48, 32, 10_000_000
PRODUCT_TYPES = frozenset({"product", "productgroup"})
OG_PRODUCT_TYPES = frozenset({"product", "product.item"})
ID_KEYS = ("sku", "productID", "gtin", "gtin13", "gtin14", "gtin12", "gtin8", "mpn", "productGroupID")
OG_ID_KEYS = ("product:retailer_item_id", "og:product_id", "product:sku", "product:item_group_id")
OG_PRICE_KEYS = ("product:price:amount", "og:price:amount")
OG_CURRENCY_KEYS = ("product:price:currency", "og:price:currency")
META_KEYS = frozenset({*OG_ID_KEYS, *OG_PRICE_KEYS, *OG_CURRENCY_KEYS, "og:type", "og:title",
                       "product:category", "product:brand"})
_PRICE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")  # "1,299.00", "129.00", "129"
_CURRENCY = re.compile(r"[A-Z]{3}")
_TYPE_PREFIX = re.compile(r"[/:#]")  # "schema:Product", "http://schema.org/Product"
_PATH_SEPARATORS = re.compile(r"[>/|›»]")
_WRAPPERS = (("<!--", "-->"), ("//<![CDATA[", "//]]>"), ("<![CDATA[", "]]>"))


@dataclass(frozen=True)
class ProductFacts:
    """What a page says it sells. Only the id is required; the rest is whatever was sound."""

    id: str
    name: str | None = None
    price: float | None = None
    currency: str | None = None
    category: str | None = None
    brand: str | None = None


class ProductFactsCollector:
    """One page's product facts, gathered from the rewriter's callbacks in document order."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._size, self._scripts, self._overflow = 0, 0, False
        self._product: dict[str, Any] | None = None
        self._meta: dict[str, str] = {}

    def feed_json_ld(self, chunk: str, last: bool) -> None:
        """One text chunk of an ld+json script; `last` ends the script. Buffering is bounded."""
        wanted = self._product is None and self._scripts < MAX_SCRIPTS and not self._overflow
        if wanted and isinstance(chunk, str):
            self._size += len(chunk)
            self._overflow = self._size > MAX_SCRIPT_CHARS
            if self._overflow:
                self._chunks = []
            else:
                self._chunks.append(chunk)
        if last:
            if wanted and not self._overflow:
                node = _find_product(_parse_script("".join(self._chunks)))
                self._product = None if node is None else _product_facts(node)
            self._scripts += 1
            self._chunks, self._size, self._overflow = [], 0, False

    def feed_meta(self, prop: str | None, content: str | None) -> None:
        """An og:/product: meta tag as lol-html gives it (entities still encoded). First one wins."""
        key = prop.strip().lower() if isinstance(prop, str) else ""
        if key in META_KEYS and key not in self._meta and isinstance(content, str):
            self._meta[key] = html.unescape(content[:1024])

    def facts(self) -> ProductFacts | None:
        """The page's product, or None when it names none: an id is never invented."""
        found = self._product or {}
        if self._meta.get("og:type", "").strip().lower() in OG_PRODUCT_TYPES:
            found = _fill(found, _meta_facts(self._meta))
        return ProductFacts(**found) if found.get("id") else None


def _parse_script(text: str) -> Any:
    """The script's JSON, tolerating comment/CDATA wrappers some CMSs emit; None when invalid."""
    text = text.strip()
    for head, tail in _WRAPPERS:
        text = text.removeprefix(head).removesuffix(tail).strip()
    try:
        return json.loads(text, parse_constant=lambda _: None)  # NaN/Infinity count as absent
    except (ValueError, RecursionError):
        return None


def _find_product(node: Any, depth: int = 0) -> dict[str, Any] | None:
    """The first Product where sites put one: top level, lists, @graph, mainEntity (not ItemLists)."""
    if depth > MAX_DEPTH or not isinstance(node, (list, dict)):
        return None
    if isinstance(node, dict):
        types = node.get("@type")
        names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
        if any(isinstance(t, str) and _TYPE_PREFIX.split(t)[-1].lower() in PRODUCT_TYPES for t in names):
            return node
        node = [node.get("@graph"), node.get("mainEntity")]
    return next((f for item in node if (f := _find_product(item, depth + 1)) is not None), None)


def _product_facts(node: dict[str, Any]) -> dict[str, Any]:
    """A Product's facts; a ProductGroup's gaps (often the price) come from its first variant."""
    facts = _node_facts(node)
    variant = _first_dict(node.get("hasVariant"))
    return _fill(facts, _node_facts(variant)) if variant is not None else facts


def _node_facts(node: dict[str, Any]) -> dict[str, Any]:
    price, currency = _offer(node.get("offers"))
    return {
        "id": _first(node, ID_KEYS, _id) or _first(_first_dict(node.get("offers")) or {}, ID_KEYS, _id),
        "name": _text(node.get("name"), MAX_NAME),
        "price": price,
        "currency": currency,
        "category": _category(node.get("category")),
        "brand": _brand(node.get("brand")),
    }


def _meta_facts(meta: dict[str, str]) -> dict[str, Any]:
    return {
        "id": _first(meta, OG_ID_KEYS, _id),
        "name": _text(meta.get("og:title"), MAX_NAME),
        "price": _first(meta, OG_PRICE_KEYS, parse_price),
        "currency": _first(meta, OG_CURRENCY_KEYS, _currency),
        "category": _category(meta.get("product:category")),
        "brand": _brand(meta.get("product:brand")),
    }


def _fill(facts: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """`facts` with its missing values taken from `more`."""
    return {key: value if facts.get(key) is None else facts[key] for key, value in more.items()}


def _first_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    return value if isinstance(value, dict) else None


def _first[T](mapping: dict[str, Any], keys: tuple[str, ...], parse: Callable[[Any], T | None]) -> T | None:
    """The first of `keys` whose value parses: a bad sku falls back to the gtin, and so on."""
    return next((v for k in keys if (v := parse(mapping.get(k))) is not None), None)


def _id(value: Any) -> str | None:
    """An id the session would keep; whole numbers (gtins, WooCommerce post ids) count too."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**MAX_ID_LENGTH:
        value = str(value)
    return clean_id(value.strip(), MAX_ID_LENGTH) if isinstance(value, str) else None


def _offer(value: Any, depth: int = 0) -> tuple[float | None, str | None]:
    """The first priced offer: an Offer, a list, an AggregateOffer (lowPrice), a priceSpecification."""
    if depth > MAX_DEPTH or not isinstance(value, (list, dict)):
        return None, None
    if isinstance(value, list):
        return next((f for v in value if (f := _offer(v, depth + 1))[0] is not None), (None, None))
    currency = _currency(value.get("priceCurrency"))
    price = _first(value, ("price", "lowPrice"), parse_price)
    for nested in ("priceSpecification", "offers"):
        if price is None:
            price, other = _offer(value.get(nested), depth + 1)
            currency = currency or other
    return price, currency


def parse_price(value: Any) -> float | None:
    """A plain non-negative amount: a number, or a string like "129.00" or "1,299.00"."""
    if isinstance(value, str):
        text = value.strip()
        value = float(text.replace(",", "")) if len(text) <= 32 and _PRICE.fullmatch(text) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value < MAX_PRICE else None  # NaN and infinities fail the range


def _currency(value: Any) -> str | None:
    code = value.strip().upper() if isinstance(value, str) else ""
    return code if _CURRENCY.fullmatch(code) else None


def _brand(value: Any, depth: int = 0) -> str | None:
    """A brand given as a name, a Brand/Organization object, or a list of either."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, list):
        return next((b for v in value if (b := _brand(v, depth + 1)) is not None), None)
    return _brand(value.get("name"), depth + 1) if isinstance(value, dict) else _text(value, MAX_BRAND)


def _category(value: Any) -> str | None:
    """The lower-case leaf of a breadcrumb-like path: "Shoes > Sneakers" is "sneakers"."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, (str, dict))), None)
    value = value.get("name") if isinstance(value, dict) else value
    parts = _PATH_SEPARATORS.split(value[:4096]) if isinstance(value, str) else []
    return _text(next((s for s in reversed(parts) if s.strip()), None), MAX_CATEGORY, lower=True)


def _text(value: Any, limit: int, lower: bool = False) -> str | None:
    """A short one-line string: runs of whitespace and control characters become one space."""
    if not isinstance(value, str):
        return None
    text = " ".join("".join(c if c.isprintable() else " " for c in value[:4096]).split())
    return (text.lower() if lower else text)[:limit].rstrip() or None
