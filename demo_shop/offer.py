"""The `X-Nudge-Offer` request header: the only thing the shop knows about nudge.

Format (docs/design.md): `code=SNEAKERS10; percent=10; category=sneakers; expires=1764000000`, or
`amount=5.00` (a fixed amount off each item of the category) instead of `percent`.
Parsing is deliberately forgiving: anything odd means "no offer", never an error page,
because a broken header must not break the shop.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from demo_shop.catalog import CENTS, Product

HEADER = "x-nudge-offer"
MIN_PERCENT = Decimal(1)
MAX_PERCENT = Decimal(90)
MAX_HEADER_LENGTH = 512
_CODE = re.compile(r"[A-Za-z0-9_-]{1,40}")
_INT = re.compile(r"\d{1,12}")
_PERCENT = re.compile(r"\d{1,2}(\.\d{1,2})?")
_AMOUNT = re.compile(r"\d{1,5}(\.\d{1,2})?")


@dataclass(frozen=True, slots=True)
class Offer:
    code: str
    percent: Decimal
    category: str
    expires: int
    amount: Decimal | None = None  # a fixed amount off each item, instead of `percent`

    def applies_to(self, product: Product) -> bool:
        return product.category == self.category

    def price_for(self, product: Product) -> Decimal:
        """Discounted unit price, rounded half-up to cents; list price for other categories."""
        if not self.applies_to(product):
            return product.price
        if self.amount is not None:
            return max(product.price - self.amount, Decimal(0)).quantize(CENTS, rounding=ROUND_HALF_UP)
        factor = (Decimal(100) - self.percent) / Decimal(100)
        return (product.price * factor).quantize(CENTS, rounding=ROUND_HALF_UP)

    @property
    def percent_text(self) -> str:
        return f"{self.percent.normalize():f}"

    @property
    def note(self) -> str:
        if self.amount is not None:
            return f"{self.code}: ${self.amount:.2f} off each {self.category} item applied"
        return f"{self.code}: {self.percent_text}% off {self.category} applied"


def parse_offer(header: str | None, *, now: float, categories: Collection[str]) -> Offer | None:
    """Return the offer the header describes, or None when it is absent, malformed or stale."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        return None
    fields: dict[str, str] = {}
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if sep and key and key not in fields:
            fields[key] = value.strip()
    code = fields.get("code", "")
    category = fields.get("category", "").lower()
    raw_percent = fields.get("percent", "")
    raw_amount = fields.get("amount", "")
    raw_expires = fields.get("expires", "")
    if not (_CODE.fullmatch(code) and _INT.fullmatch(raw_expires)):
        return None
    expires = int(raw_expires)
    if "percent" not in fields and _AMOUNT.fullmatch(raw_amount):
        amount = Decimal(raw_amount)
        if category not in categories or not Decimal(0) < amount <= Decimal(10000) or expires < now:
            return None
        return Offer(code=code, percent=Decimal(0), category=category, expires=expires, amount=amount)
    if not _PERCENT.fullmatch(raw_percent):
        return None
    try:
        percent = Decimal(raw_percent)
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
        return None
    if category not in categories or not MIN_PERCENT <= percent <= MAX_PERCENT or expires < now:
        return None
    return Offer(code=code, percent=percent, category=category, expires=expires)
