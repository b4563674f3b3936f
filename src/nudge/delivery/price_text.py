"""Prices as shops write them in their pages' text: "£129.00", "$1,299.99", "1.299,99 €", "129,00 zł",
"CHF 1'299.–", "₹1,29,999". nudge reads one from an element `[site] prices` names, to show the
visitor's discount where the shop's markup marks no price, and writes the new price the same way
(symbol, separators, decimals), so it reads like the shop's own.

Reading is strict on purpose: text that is anything but one amount with a currency around it ("2 for
£10", "£10 – £20", "Save £5", "-£5.00", "Price: £10", "Call us") is not a price, and nudge leaves
the element as it is. Text arrives raw from HTMLRewriter, character references and all (`&pound;`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from nudge.offers import Redeemed
from nudge.visitor.product_facts import MAX_PRICE

MAX_TEXT = 256  # characters of an element's raw text; more is a description, not a price
# ISO 4217 currencies without minor units, and with three (the rest have two).
_ZERO_DECIMALS = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split())
_THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
# Currency words written next to amounts that are not symbols (category Sc) or the shop's ISO code.
_CURRENCY_WORDS = frozenset("zł zl kr Kr Kč Fr SFr Ft lei Lei Rs Rp RM R kn лв руб р грн din Lek KM TL Q".split())
_SPACES = " \u00a0\u202f\u2009"  # space, no-break space, narrow no-break space, thin space
_NUMBER = re.compile(r"\d(?:[\d.,'\u2019 \u00a0\u202f\u2009]*\d)?")
_DASH_CENTS = re.compile(r"[.,][-\u2013\u2014]")  # "129,-" and "129.–": a whole amount
_WORDS = re.compile(r"[^\W\d_]+|\S")  # runs of letters, and every other character on its own


def minor_digits(currency: str) -> int:
    """Digits after the decimal separator in `currency` (ISO 4217): 2 for most, 0 for JPY, 3 for KWD."""
    return 0 if currency in _ZERO_DECIMALS else 3 if currency in _THREE_DECIMALS else 2


@dataclass(frozen=True)
class PriceText:
    """An amount read from a price's text, and how that text writes amounts."""

    amount: float
    before: str  # what precedes the number ("£", "CHF "), as decoded text
    after: str  # what follows it (" €", " zł"), without dash cents
    group: str  # the thousands separator, "" when the number shows none
    decimal: str  # the decimal separator, "" when the number shows none
    decimals: int  # digits after it
    dash: str = ""  # ",-" or ".–" written for "no cents"
    indian: bool = False  # grouped in lakhs and crores: 1,29,999
    minor: int = 2  # the currency's minor digits, for amounts the old text had no decimals for

    def written(self, amount: float) -> str:
        """`amount` written as this price was: "£116.10", "1.169,99 €", "CHF 1'169.–"."""
        places = self.decimals or (0 if round(amount, self.minor) == round(amount) else self.minor)
        whole, _, cents = f"{round(amount, places):.{places}f}".partition(".")
        number = _grouped(whole, self.group, self.indian)
        if cents:
            number += f"{self.decimal or self._usual_decimal()}{cents}"
        elif self.dash:
            number += self.dash
        return f"{self.before}{number}{self.after}"

    def _usual_decimal(self) -> str:
        """The decimal separator for a price written without one: the other of "." and ",", or a
        comma where the currency follows the number ("129 zł"), as in most of Europe."""
        if self.dash:
            return self.dash[0]
        if self.group in (".", ","):
            return "," if self.group == "." else "."
        return "," if self.after.strip() else "."


def read_price_text(raw: str, currency: str) -> PriceText | None:
    """The price an element's raw text shows, or None when it is not exactly one price. `currency`
    is the shop's (ISO 4217): its code may stand beside the amount, and it says whether "1,299"
    means 1299 (two decimals: a thousands separator) or 1.299 (KWD's three)."""
    if len(raw) > MAX_TEXT:
        return None
    # decoded, without invisible formatting (the bidi marks some shops wrap prices in)
    text = "".join(c for c in html.unescape(raw) if unicodedata.category(c) != "Cf").strip()
    numbers = list(_NUMBER.finditer(text))
    if len(numbers) != 1:
        return None  # none, or a range, a multi-buy, a price with its tax: not one price
    found = numbers[0]
    after = text[found.end():]
    dash = _DASH_CENTS.match(after)
    if dash:
        after = after[dash.end():]
    before = text[:found.start()]
    if not (_currency_only(before, currency) and _currency_only(after, currency)):
        return None
    number = _read_number(found.group(), minor_digits(currency))
    if number is None:
        return None
    amount, group, decimal, decimals, indian = number
    if dash and (decimal or dash.group()[0] == group):
        return None  # "129.00,-", "1.299.–"
    return PriceText(amount, before, after, group, dash.group()[0] if dash else decimal, decimals,
                     dash.group() if dash else "", indian, minor_digits(currency))


def _currency_only(text: str, currency: str) -> bool:
    """Whether `text` beside the number holds only currency: symbols ("$", "€"), the shop's code,
    words currencies are written with ("zł", "kr", "US$"'s "US"), spaces and the odd "." or "/"."""
    for match in _WORDS.finditer(text):
        word = match.group()
        if word.isalpha():
            attached = text[match.end():match.end() + 1]  # "US$", "R$", "HK$": letters joined to a symbol
            if not (word == currency or word in _CURRENCY_WORDS
                    or word.isupper() and len(word) <= 3 and attached and (_is_symbol(attached) or attached == "/")):
                return False
        elif not (_is_symbol(word) or word in "./" and text[:match.start()][-1:].isalpha()):
            return False  # a sign, a bracket, a dash, a lone dot, any other word: not a plain price
    return True


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char) == "Sc"


def _read_number(token: str, minor: int) -> tuple[float, str, str, int, bool] | None:
    """(amount, group separator, decimal separator, decimals, Indian grouping) of a number as shops
    write it, or None when its separators are not one consistent way of writing it."""
    seps = [c for c in token if not c.isdigit()]
    decimal = ""
    if seps and seps[-1] in ".," and seps.count(seps[-1]) == 1:
        digits_after = len(token) - token.rindex(seps[-1]) - 1
        lone = len(seps) == 1
        # a lone "." or "," before three digits groups thousands ("1,299", "1.299"), unless the
        # currency has three decimals (KWD 1.250)
        if not (lone and digits_after == 3 and minor != 3):
            decimal = seps[-1]
    whole, cents = token.rsplit(decimal, 1) if decimal else (token, "")
    if decimal and not 1 <= len(cents) <= 3:
        return None
    group_seps = {c for c in whole if not c.isdigit()}
    if len(group_seps) > 1 and not group_seps <= set(_SPACES):
        return None  # "1,299.999.00": two ways of grouping
    group = next((c for c in whole if not c.isdigit()), "")
    groups = re.split(f"[{re.escape(_SPACES if group in _SPACES else group)}]", whole) if group else [whole]
    indian = _indian(groups)
    if group and not (_western(groups) or indian):
        return None  # "10 20", "1,2999": not thousands
    amount = float(f"{''.join(groups)}.{cents or 0}")
    return (amount, group, decimal, len(cents), indian) if amount < MAX_PRICE else None


def _western(groups: list[str]) -> bool:
    return 1 <= len(groups[0]) <= 3 and groups[0][0] != "0" and all(len(g) == 3 for g in groups[1:])


def _indian(groups: list[str]) -> bool:
    """1,29,999: the last three digits, then pairs."""
    return (len(groups) > 2 and 1 <= len(groups[0]) <= 2 and groups[0][0] != "0" and len(groups[-1]) == 3
            and all(len(g) == 2 for g in groups[1:-1]))


def _grouped(whole: str, group: str, indian: bool) -> str:
    """Digits with the thousands separator as the old price had it (none when it had none)."""
    if not group or len(whole) <= 3:
        return whole
    head, last = whole[:-3], whole[-3:]
    size = 2 if indian else 3
    parts: list[str] = []
    while head:
        parts.insert(0, head[-size:])
        head = head[:-size]
    return group.join([*parts, last])


class TextPriceReader:
    """Reads price elements' text as HTMLRewriter streams it, one element at a time: the runtime
    calls `start` at the element, `feed` with each text chunk inside it and `finish` at its end
    tag, which says what the price is with the visitor's discount. A price element inside the one
    being read is part of its text, not a price of its own; one that nudge priced another way
    (`spoil`: marked, or read from an attribute) makes the outer element no price either."""

    def __init__(self, offer: Redeemed, currency: str) -> None:
        self.offer, self.currency = offer, currency
        self._parts: list[str] | None = None  # the raw text so far; None: no element is being read
        self._size = 0
        self._spoiled = False

    @property
    def reading(self) -> bool:
        return self._parts is not None

    def start(self) -> None:
        self._parts, self._size, self._spoiled = [], 0, False

    def feed(self, raw: str) -> None:
        if self._parts is not None and self._size <= MAX_TEXT:  # past that it is no price anyway
            self._parts.append(raw)
            self._size += len(raw)

    def spoil(self) -> None:
        self._spoiled = self.reading

    def finish(self) -> str | None:
        """The new price, written as the shop wrote the old one ("£116.10"), or None to leave the
        element as it is (not one price, or nothing off it)."""
        raw, spoiled = "".join(self._parts) if self._parts else "", self._spoiled
        self._parts, self._spoiled = None, False
        price = None if spoiled else read_price_text(raw, self.currency)
        if price is None:
            return None
        now = self.offer.discounted(price.amount, price.minor)
        return price.written(now) if now < price.amount else None
