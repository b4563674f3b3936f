"""Cart stored in the browser's `shop_cart` cookie as `SKU:QTY|SKU:QTY`.

A cookie keeps the shop stateless (restarts and parallel e2e workers cannot lose carts).
The cookie is untrusted input: it is validated on every read and anything odd is dropped,
so a garbage cookie is simply an empty cart.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from demo_shop.catalog import CURRENCY, Catalog, Product
from demo_shop.offer import Offer

COOKIE = "shop_cart"
COOKIE_MAX_AGE = 30 * 24 * 3600
MAX_QTY = 99
MAX_COOKIE_LENGTH = 1024
_ENTRY_SEP = "|"  # "," and ";" are not valid in a cookie value; "|" and ":" are.

Cart = dict[str, int]


def parse_cart(raw: str | None, known_skus: Container[str]) -> Cart:
    """Read the cookie, keeping only known skus with quantities 1..MAX_QTY."""
    cart: Cart = {}
    if not raw or len(raw) > MAX_COOKIE_LENGTH:
        return cart
    for entry in raw.split(_ENTRY_SEP):
        sku, sep, qty = entry.partition(":")
        if not sep or sku not in known_skus or not qty.isascii() or not qty.isdigit():
            continue
        quantity = int(qty)
        if 1 <= quantity <= MAX_QTY:
            cart[sku] = min(cart.get(sku, 0) + quantity, MAX_QTY)
    return cart


def serialize_cart(cart: Cart) -> str:
    return _ENTRY_SEP.join(f"{sku}:{qty}" for sku, qty in cart.items() if qty > 0)


def add_item(cart: Cart, sku: str, qty: int) -> Cart:
    updated = dict(cart)
    updated[sku] = min(updated.get(sku, 0) + qty, MAX_QTY)
    return updated


def remove_item(cart: Cart, sku: str, qty: int | None) -> Cart:
    """Remove `qty` units, or the whole line when qty is None; unknown skus are a no-op."""
    updated = dict(cart)
    left = 0 if qty is None else updated.get(sku, 0) - qty
    if left > 0:
        updated[sku] = left
    else:
        updated.pop(sku, None)
    return updated


@dataclass(frozen=True, slots=True)
class Line:
    product: Product
    quantity: int
    unit_price: Decimal  # after any offer
    coupon: str | None  # offer code when it lowered unit_price

    @property
    def discounted(self) -> bool:
        return self.coupon is not None

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Summary:
    lines: list[Line]
    offer: Offer | None

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal("0.00"))

    @property
    def list_total(self) -> Decimal:
        return sum((line.product.price * line.quantity for line in self.lines), Decimal("0.00"))

    @property
    def savings(self) -> Decimal:
        return self.list_total - self.total

    @property
    def coupon(self) -> str | None:
        """The offer code, only when it actually discounted something in this cart."""
        return self.offer.code if self.offer and any(line.discounted for line in self.lines) else None


def price_line(product: Product, quantity: int, offer: Offer | None) -> Line:
    if offer is not None and offer.applies_to(product):
        return Line(product, quantity, offer.price_for(product), offer.code)
    return Line(product, quantity, product.price, None)


def summarize(cart: Cart, catalog: Catalog, offer: Offer | None) -> Summary:
    lines = [price_line(catalog.products[sku], qty, offer) for sku, qty in cart.items() if sku in catalog.products]
    return Summary(lines=lines, offer=offer)


def money(value: Decimal) -> float:
    """JSON/dataLayer number for an amount (cents-exact Decimal -> float)."""
    return float(value)


def cart_json(summary: Summary) -> dict[str, Any]:
    """Body of the JSON answer to POST /cart/add and /cart/remove."""
    return {
        "count": summary.count,
        "total": money(summary.total),
        "savings": money(summary.savings),
        "currency": CURRENCY,
        "coupon": summary.coupon,
        "items": [
            {
                "sku": line.product.sku,
                "name": line.product.name,
                "category": line.product.category,
                "price": money(line.unit_price),
                "list_price": money(line.product.price),
                "quantity": line.quantity,
                "line_total": money(line.total),
            }
            for line in summary.lines
        ],
    }
