"""Which products a `recommendations` action lists: from the shop's catalog file and the session.

Sources, in the order the rule names them: `accessories` (what goes with the product on screen, or
with the last product viewed), `recently_viewed`, `category` (the category on screen, or the last
one browsed). Never the product on screen, never anything already in the cart, no duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator

from nudge.rules.product_feed import SOURCES, CatalogProduct, ShopCatalog
from nudge.visitor.pages import Page
from nudge.visitor.session import Session

__all__ = ["SOURCES", "recommend"]


def recommend(catalog: ShopCatalog, session: Session, page: Page, sources: tuple[str, ...],
              limit: int) -> list[CatalogProduct]:
    """Up to `limit` products, best source first."""
    in_cart = set(session.cart)
    current = page.product if page.type == "product" else None
    seen: set[str] = {current} if current else set()
    chosen: list[CatalogProduct] = []
    for source in sources:
        for product in _from(source, catalog, session, page):
            if len(chosen) >= limit:
                return chosen
            if product.id in seen or product.id in in_cart or product.sku in in_cart:
                continue
            seen.add(product.id)
            chosen.append(product)
    return chosen


def _from(source: str, catalog: ShopCatalog, session: Session, page: Page) -> Iterator[CatalogProduct]:
    recent = [p.id for p in reversed(session.products)]  # most recent first
    if source == "accessories":
        anchor = catalog.get(page.product) if page.type == "product" and page.product else None
        anchors = [anchor] if anchor else [p for p in (catalog.get(i) for i in recent) if p][:1]
        for a in anchors:
            yield from (p for p in (catalog.get(i) for i in a.accessories) if p)
    elif source == "recently_viewed":
        yield from (p for p in (catalog.get(i) for i in recent) if p)
    elif source == "category":
        category = page.category or _last_category(session)
        if category:
            yield from catalog.in_category(category)


def _last_category(session: Session) -> str | None:
    if not session.categories:
        return None
    return max(session.categories, key=lambda name: session.categories[name].last_seen)
