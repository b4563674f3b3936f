"""GA4-style dataLayer events, the page signals nudge's client script listens to.

Shape (docs/design.md): `{event, ecommerce: {currency, value, items: [{item_id, item_name,
item_category, price, quantity}]}}`; prices are the ones the visitor actually pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from demo_shop.cart import Line, money
from demo_shop.catalog import CURRENCY


def ga4_item(line: Line, index: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "item_id": line.product.sku,
        "item_name": line.product.name,
        "item_brand": line.product.brand,
        "item_category": line.product.category,
        "price": money(line.unit_price),
        "quantity": line.quantity,
    }
    if line.coupon is not None:
        item["coupon"] = line.coupon
        item["discount"] = money(line.product.price - line.unit_price)
    if index is not None:
        item["index"] = index
    return item


def ecommerce_event(name: str, lines: Sequence[Line], *, indexed: bool = False, **extra: Any) -> dict[str, Any]:
    """One dataLayer entry; `extra` adds event-specific ecommerce fields (transaction_id, coupon...)."""
    value = sum((line.total for line in lines), Decimal("0.00"))
    ecommerce: dict[str, Any] = {
        "currency": CURRENCY,
        "value": money(value),
        **{k: v for k, v in extra.items() if v is not None},
        "items": [ga4_item(line, i if indexed else None) for i, line in enumerate(lines)],
    }
    return {"event": name, "ecommerce": ecommerce}
