"""In-memory orders: enough for a demo confirmation page, gone on restart by design."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from demo_shop.cart import Line, Summary

MAX_ORDERS = 1000


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    lines: tuple[Line, ...]  # prices frozen at order time, offer included
    total: Decimal
    savings: Decimal
    coupon: str | None


class OrderBook:
    """Bounded dict of recent orders (oldest dropped) so a long `make dev` cannot grow forever."""

    def __init__(self, limit: int = MAX_ORDERS) -> None:
        self._orders: dict[str, Order] = {}
        self._limit = limit

    def place(self, summary: Summary) -> Order:
        order_id = f"NDG-{secrets.token_hex(4).upper()}"
        order = Order(order_id, tuple(summary.lines), summary.total, summary.savings, summary.coupon)
        self._orders[order_id] = order
        while len(self._orders) > self._limit:
            del self._orders[next(iter(self._orders))]
        return order

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)
