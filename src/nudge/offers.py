"""Offers: the signed token behind a nudge's button, and the redeemed offer a visitor carries.

The token in the button's link is bound to the visitor and the rule and expires, so it cannot be
shared, replayed by someone else, or edited. Once redeemed, the offer lives in its own signed
cookie (separate from the session cookie, so concurrent session updates can never drop it) and
reaches the origin as the `X-Nudge-Offer` request header.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import msgpack

from nudge.rules.model import Offer, Rule
from nudge.rules.schedule import local_time
from nudge.signing import BadData, Signer
from nudge.visitor.product_facts import parse_price

OFFER_COOKIE = "nudge_offer"
OFFER_HEADER = "X-Nudge-Offer"
# An origin that priced the page with the offer itself says so, and nudge leaves its prices alone.
OFFER_APPLIED_HEADER = "X-Nudge-Offer-Applied"
TOKEN_TTL = 60 * 60  # a button link works for an hour after the page was served



@dataclass(frozen=True)
class Redeemed:
    """An offer the visitor has redeemed, as carried in its cookie."""

    rule_id: str
    code: str
    percent: int  # 0 for an amount offer
    category: str
    expires: int  # Unix seconds
    amount: float | None = None  # a fixed amount off each item of the category

    def header_value(self) -> str:
        off = f"amount={self.amount:.2f}" if self.amount is not None else f"percent={self.percent}"
        return f"code={self.code}; {off}; category={self.category}; expires={self.expires}"

    @property
    def describe(self) -> str:
        return f"{self.amount:.2f} off" if self.amount is not None else f"{self.percent}% off"

    def price_after(self, marked: str | None) -> tuple[float, float] | None:
        """(was, now) for a price the page marks (`data-nudge-price="129.00"`, microdata `content`),
        or None when the value is not a plain price. Amounts never take a price below zero."""
        was = parse_price(marked) if marked else None
        return (was, self.discounted(was)) if was is not None else None

    def discounted(self, was: float, places: int = 2) -> float:
        """`was` less this offer's discount, to the cent (or the currency's minor unit, `places`);
        never below zero."""
        off = self.amount if self.amount is not None else was * self.percent / 100
        return round(max(0.0, was - off), places)


def offer_expiry(offer: Offer, now: int) -> int:
    """When a redeemed offer ends: `valid_hours` from now, capped at local midnight if "today only"."""
    end = now + offer.valid_hours * 3600
    if offer.until_midnight:
        end = min(end, next_midnight(now, offer.timezone))
    return end


def next_midnight(now: int, tz_name: str) -> int:
    """The next local midnight in `tz_name` (IANA name); UTC when the zone is unknown here."""
    local = local_time(now, tz_name)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp())


class OfferTokens:
    """Mints and verifies button tokens and offer cookies."""

    def __init__(self, token_signer: Signer, cookie_signer: Signer) -> None:
        self._tokens = token_signer
        self._cookies = cookie_signer

    def mint(self, rule: Rule, visitor: str, now: int) -> str:
        payload = msgpack.packb([rule.id, visitor, now + TOKEN_TTL])
        return self._tokens.sign(payload)

    def verify(self, token: str, visitor: str, now: int) -> str:
        """The rule id of a valid token for this visitor; raises BadData otherwise."""
        if len(token) > 512:
            raise BadData("token too long")
        try:
            rule_id, bound_to, expires = msgpack.unpackb(self._tokens.unsign(token))
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise BadData("malformed token") from exc
        if not isinstance(rule_id, str) or bound_to != visitor:
            raise BadData("token belongs to another visitor")
        if not isinstance(expires, int) or isinstance(expires, bool) or expires < now:
            raise BadData("token expired")
        return rule_id

    def cookie(self, redeemed: Redeemed) -> str:
        r = redeemed
        return self._cookies.sign(msgpack.packb([r.rule_id, r.code, r.percent, r.category, r.expires, r.amount]))

    def from_cookie(self, value: str | None, now: int) -> Redeemed | None:
        """The visitor's active offer, or None (missing, forged, malformed or expired)."""
        if not value or len(value) > 512:
            return None
        try:
            redeemed = _redeemed(msgpack.unpackb(self._cookies.unsign(value)))
        except (BadData, ValueError, TypeError, msgpack.UnpackException):
            return None
        return redeemed if redeemed is not None and redeemed.expires > now else None


def _redeemed(fields: object) -> Redeemed | None:
    """The offer in a cookie's payload when every field has the type the edge relies on (the
    header, the price arithmetic): a signed payload of another shape is no offer, not a crash."""
    if not isinstance(fields, list) or len(fields) not in (5, 6):
        return None
    rule_id, code, percent, category, expires, *rest = fields
    amount = rest[0] if rest else None
    if not (isinstance(rule_id, str) and isinstance(code, str) and isinstance(category, str)
            and _whole(percent) and _whole(expires)):
        return None
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, (int, float))
                               or not 0 < amount <= 10_000):  # NaN fails the range too
        return None
    return Redeemed(rule_id, code, percent, category, expires, None if amount is None else float(amount))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
