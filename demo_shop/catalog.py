"""The demo shop's catalog: plain data loaded once from catalog.toml.

Kept as data (not code) so the e2e tests and the rules authors can read the
same skus, slugs and prices the shop renders.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
CURRENCY = "USD"
CENTS = Decimal("0.01")


class CatalogError(ValueError):
    """The catalog file is inconsistent; raised at import so mistakes never reach a page."""


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    name: str
    blurb: str


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    slug: str
    name: str
    brand: str
    category: str
    price: Decimal
    description: str
    related: tuple[str, ...] = ()
    featured: bool = False

    @property
    def path(self) -> str:
        """Site-relative URL, the one pattern rules/pages.toml matches."""
        return f"/collections/{self.category}/products/{self.slug}"


@dataclass(frozen=True, slots=True)
class Catalog:
    categories: dict[str, Category]
    products: dict[str, Product]  # by sku, in file order

    def get(self, sku: str) -> Product | None:
        return self.products.get(sku)

    def in_category(self, category: str) -> list[Product]:
        return [p for p in self.products.values() if p.category == category]

    def find(self, category: str, slug: str) -> Product | None:
        """A product only exists under its own category's URL."""
        for product in self.products.values():
            if product.category == category and product.slug == slug:
                return product
        return None

    def featured(self) -> list[Product]:
        return [p for p in self.products.values() if p.featured]

    def related(self, product: Product) -> list[Product]:
        return [self.products[sku] for sku in product.related]


def _price(raw: Any, sku: str) -> Decimal:
    try:
        price = Decimal(str(raw))
    except InvalidOperation as exc:
        raise CatalogError(f"{sku}: price {raw!r} is not a number") from exc
    if price <= 0 or price != price.quantize(CENTS):
        raise CatalogError(f"{sku}: price {raw!r} must be positive with at most 2 decimals")
    return price.quantize(CENTS)


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Parse and cross-check the catalog (unique skus/slugs, known categories, related accessories)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    categories = {c["slug"]: Category(c["slug"], c["name"], c["blurb"]) for c in data["categories"]}
    products: dict[str, Product] = {}
    slugs: set[tuple[str, str]] = set()
    for raw in data["products"]:
        sku = raw["sku"]
        product = Product(
            sku=sku,
            slug=raw["slug"],
            name=raw["name"],
            brand=raw["brand"],
            category=raw["category"],
            price=_price(raw["price"], sku),
            description=raw["description"],
            related=tuple(raw.get("related", ())),
            featured=bool(raw.get("featured", False)),
        )
        if sku in products:
            raise CatalogError(f"duplicate sku {sku}")
        if product.category not in categories:
            raise CatalogError(f"{sku}: unknown category {product.category}")
        if (product.category, product.slug) in slugs:
            raise CatalogError(f"{sku}: duplicate slug {product.slug}")
        products[sku] = product
        slugs.add((product.category, product.slug))
    for product in products.values():
        for sku in product.related:
            if sku not in products or products[sku].category != "accessories":
                raise CatalogError(f"{product.sku}: related sku {sku} is not an accessory")
    return Catalog(categories=categories, products=products)


CATALOG = load_catalog()
