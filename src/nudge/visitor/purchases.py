"""Orders the shop confirms: the only purchases that count as orders, revenue and conversions.

The origin names the order on its confirmation page in a response header the Worker strips before
the browser sees it:

    X-Nudge-Order: id=<order id>; value=<amount in the shop's currency, e.g. 129.00>

A purchase the browser reports (the dataLayer's `purchase`, relayed by the client script) is kept
as an "unverified" measurement only. Each order id counts once, ever: the session remembers the
visit's order ids (a reload of the confirmation page), and the edge keeps one KV key per order id
(`kv_keys.order_key`), a best-effort guard across browsers (see the README's threat model: KV is
eventually consistent, so two requests with the same order id at once in different places can both
count).
"""

from __future__ import annotations

from dataclasses import dataclass

ORDER_HEADER = "x-nudge-order"
MAX_ORDER_ID = 64
MAX_ORDER_VALUE = 10_000_000.0


@dataclass(frozen=True)
class ShopOrder:
    id: str
    value: float  # in the shop's currency


def shop_header_fields(value: str) -> dict[str, str]:
    """The `name=value; name=value` fields of a header the shop sends (X-Nudge-Order, X-Nudge-Cart):
    names lower-cased, the first of a repeated name kept, parts without `=` skipped."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, raw = part.partition("=")
        if sep:
            fields.setdefault(name.strip().lower(), raw.strip())
    return fields


def parse_order_header(value: str | None) -> ShopOrder | None:
    """The order an `X-Nudge-Order` header names; None when absent or malformed (the edge then
    counts nothing: a shop's mistake must not invent revenue). Unknown fields are ignored."""
    if not value or len(value) > 512:
        return None
    fields = shop_header_fields(value)
    order_id = fields.get("id", "")
    if not order_id or len(order_id) > MAX_ORDER_ID or not order_id.isascii() or not order_id.isprintable():
        return None
    amount = _amount(fields.get("value", "0"))
    return None if amount is None else ShopOrder(order_id, amount)


def _amount(raw: str) -> float | None:
    if not raw or len(raw) > 16 or any(c not in "0123456789." for c in raw) or raw.count(".") > 1 or raw == ".":
        return None
    amount = float(raw)
    return amount if amount <= MAX_ORDER_VALUE else None
