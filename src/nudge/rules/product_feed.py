"""The shop's product list for recommendations: `rules/catalog.toml` (optional).

Recommendations need what the visitor model does not keep (names, links, prices, images) and the
relations between products ("goes with"), so they come from a small file the shop exports from its
product feed. Validated like rules: a bad entry fails the build with the file, product and field.
Stdlib only (it loads with the rules in the build step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nudge.visitor.pages import same_site_path

CATALOG_FILE = "catalog.toml"
MAX_PRODUCTS = 5000
SOURCES = ("accessories", "recently_viewed", "category")  # what recommendations draw from
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_IMAGE = re.compile(r"^(/(?!/)|https://)[^\s\"'<>\\]{1,500}$")


class CatalogError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{CATALOG_FILE}: {field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class CatalogProduct:
    id: str  # the {product} part of its page URL, as the visitor model records it
    sku: str  # the id the cart uses (defaults to id)
    name: str
    url: str  # same-site path
    category: str
    price: float | None = None
    image: str | None = None
    accessories: tuple[str, ...] = ()  # ids of products that go with this one


@dataclass(frozen=True)
class ShopCatalog:
    products: tuple[CatalogProduct, ...] = ()
    _by_id: dict[str, CatalogProduct] = field(default_factory=dict, repr=False, compare=False)
    _by_sku: dict[str, CatalogProduct] = field(default_factory=dict, repr=False, compare=False)
    _by_category: dict[str, tuple[CatalogProduct, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((p.id, p) for p in self.products)
        self._by_sku.update((p.sku, p) for p in reversed(self.products))  # the first of a shared sku
        groups: dict[str, list[CatalogProduct]] = {}
        for p in self.products:
            groups.setdefault(p.category, []).append(p)
        self._by_category.update((k, tuple(v)) for k, v in groups.items())

    def get(self, product_id: str) -> CatalogProduct | None:
        return self._by_id.get(product_id)

    def with_sku(self, sku: str) -> CatalogProduct | None:
        """The product the cart names `sku` (what cart routes and events carry)."""
        return self._by_sku.get(sku)

    def in_category(self, category: str) -> tuple[CatalogProduct, ...]:
        return self._by_category.get(category, ())


EMPTY = ShopCatalog()


def load_catalog(data: dict[str, Any]) -> ShopCatalog:
    """A validated catalog from the parsed TOML (`[[product]]` tables); raises CatalogError."""
    entries = data.get("product", [])
    unknown = sorted(set(data) - {"product"})
    if unknown:
        raise CatalogError(unknown[0], "unknown table (expected [[product]] entries)")
    if not isinstance(entries, list):
        raise CatalogError("product", "expected [[product]] tables")
    if len(entries) > MAX_PRODUCTS:
        raise CatalogError("product",
                           f"{len(entries)} products; at most {MAX_PRODUCTS} (list the ones worth recommending)")
    products = [_product(i, entry) for i, entry in enumerate(entries)]
    ids = set()
    for i, p in enumerate(products):
        if p.id in ids:
            raise CatalogError(f"product[{i}].id", f"duplicate id {p.id!r}")
        ids.add(p.id)
    for i, p in enumerate(products):
        for other in p.accessories:
            if other not in ids:
                raise CatalogError(f"product[{i}].accessories", f"{other!r} is not a product id in this file")
    return ShopCatalog(tuple(products))


def _product(i: int, entry: Any) -> CatalogProduct:
    where = f"product[{i}]"
    if not isinstance(entry, dict):
        raise CatalogError(where, "expected a table")
    allowed = {"id", "sku", "name", "url", "category", "price", "image", "accessories"}
    extra = sorted(set(entry) - allowed)
    if extra:
        raise CatalogError(f"{where}.{extra[0]}", f"unknown field; expected {', '.join(sorted(allowed))}")

    def text(key: str, limit: int, required: bool = True) -> str | None:
        value = entry.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise CatalogError(f"{where}.{key}", f"expected text of 1..{limit} characters")
        return value

    pid = text("id", 32) or ""
    sku = text("sku", 32, required=False) or pid
    for key, value in (("id", pid), ("sku", sku)):
        if not _ID.match(value):
            raise CatalogError(f"{where}.{key}", "use letters, digits, '.', '_' and '-' (at most 32)")
    url = text("url", 500) or ""
    if not same_site_path(url):
        raise CatalogError(f"{where}.url", "must be a same-site path starting with a single '/'")
    image = text("image", 500, required=False)
    if image is not None and not _IMAGE.match(image):
        raise CatalogError(f"{where}.image", "must be a same-site path or an https:// URL")
    price = entry.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))
                              or not 0 <= price <= 10_000_000):
        raise CatalogError(f"{where}.price", "expected a number (e.g. 129.00)")
    accessories = entry.get("accessories", [])
    if not isinstance(accessories, list) or not all(isinstance(a, str) for a in accessories):
        raise CatalogError(f"{where}.accessories", "expected a list of product ids")
    return CatalogProduct(pid, sku, text("name", 80) or "", url, text("category", 32) or "",
                          None if price is None else float(price), image, tuple(accessories[:20]))
