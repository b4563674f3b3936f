"""Prices read from the text shops write them in, and written back the same way (price_text.py)."""

from __future__ import annotations

import pytest

from nudge.delivery.price_text import MAX_TEXT, TextPriceReader, minor_digits, read_price_text
from nudge.offers import Redeemed

TEN_PERCENT = Redeemed("r", "SNEAKERS10", 10, "sneakers", 2_000_000_000)


@pytest.mark.parametrize("text, currency, amount, after_ten_percent", [
    ("£129.00", "GBP", 129.0, "£116.10"),
    ("$1,299.99", "USD", 1299.99, "$1,169.99"),
    ("1.299,99 €", "EUR", 1299.99, "1.169,99 €"),
    ("129,00 zł", "PLN", 129.0, "116,10 zł"),
    ("1 299,99\u00a0€", "EUR", 1299.99, "1 169,99\u00a0€"),  # French: spaces group, no-break space before €
    ("1\u202f299,99 €", "EUR", 1299.99, "1\u202f169,99 €"),  # ... or narrow no-break spaces
    ("CHF 1'299.–", "CHF", 1299.0, "CHF 1'169.10"),  # Swiss: "–" for no cents; cents where there are some
    ("1.299,–", "EUR", 1299.0, "1.169,10"),
    ("129,-", "SEK", 129.0, "116,10"),
    ("CHF 100.–", "CHF", 100.0, "CHF 90.–"),  # a whole new amount keeps the dash
    ("₹1,29,999", "INR", 129999.0, "₹1,16,999.10"),  # lakhs
    ("¥12,000", "JPY", 12000.0, "¥10,800"),  # no minor unit: "," groups, whole yen
    ("¥1,299", "JPY", 1299.0, "¥1,169"),  # 1169.1 yen is shown as whole yen
    ("1.250 KWD", "KWD", 1.25, "1.125 KWD"),  # three decimals: "." before three digits is the decimal point
    ("1,299", "USD", 1299.0, "1,169.10"),  # two: "," before three digits groups thousands
    ("1.299", "EUR", 1299.0, "1.169,10"),
    ("$129", "USD", 129.0, "$116.10"),  # no cents shown: cents where the new price has some
    ("129 kr", "SEK", 129.0, "116,10 kr"),  # ... with a comma where the currency follows the amount
    ("$100", "USD", 100.0, "$90"),
    ("&pound;129.00", "GBP", 129.0, "£116.10"),  # text arrives raw from HTMLRewriter
    ("&#163;129&#46;00", "GBP", 129.0, "£116.10"),
    ("\n        $129.00 USD\n      ", "USD", 129.0, "$116.10 USD"),  # Shopify's Dawn, currency code on
    ("US$ 129.00", "USD", 129.0, "US$ 116.10"),
    ("R$ 1.299,90", "BRL", 1299.9, "R$ 1.169,91"),
    ("S/ 129.00", "PEN", 129.0, "S/ 116.10"),
    ("Fr. 129.–", "CHF", 129.0, "Fr. 116.10"),
    ("129 Kč", "CZK", 129.0, "116,10 Kč"),
    ("129.00 EUR", "EUR", 129.0, "116.10 EUR"),
    ("\u200e£129.00\u200e", "GBP", 129.0, "£116.10"),  # bidi marks some themes wrap prices in
    ("129.00", "USD", 129.0, "116.10"),  # the symbol in a sibling element: the number alone
    ("12,34", "USD", 12.34, "11,11"),  # "," before two digits: a decimal comma, whatever the currency
    ("12.5", "USD", 12.5, "11.2"),  # one decimal shown, one written (11.25 rounds to even)
    ("$9,999,999.99", "USD", 9999999.99, "$8,999,999.99"),  # the largest price nudge takes
])
def test_prices_as_shops_write_them(text: str, currency: str, amount: float, after_ten_percent: str) -> None:
    price = read_price_text(text, currency)
    assert price is not None and price.amount == amount
    assert price.written(TEN_PERCENT.discounted(amount, minor_digits(currency))) == after_ten_percent


@pytest.mark.parametrize("text, currency", [
    ("", "USD"),
    ("Call for price", "USD"),  # no number
    ("Sold out", "USD"),
    ("£10.00 – £20.00", "GBP"),  # two numbers: a range
    ("2 for £10", "GBP"),  # a multi-buy
    ("£129.00 (incl. 20% VAT)", "GBP"),
    ("Was £150.00 Now £129.00", "GBP"),  # WooCommerce's sale price read from its whole .price
    ("Save £5.00", "GBP"),  # a saving, not a price
    ("From £10", "GBP"),
    ("Price: £10", "GBP"),
    ("£10 each", "GBP"),
    ("£5/kg", "GBP"),  # a unit price
    ("-£5.00", "GBP"),  # negative: a discount line
    ("£-5.00", "GBP"),
    ("\u2212£5.00", "GBP"),  # a real minus sign
    ("(£5.00)", "GBP"),  # an accountant's negative
    ("£10+", "GBP"),
    ("129.00 USD", "EUR"),  # another currency than the shop's: a page of another market
    ("CHF 1'299", "USD"),
    ("10 20", "USD"),  # spaces between digits that are no thousands
    ("1,2999", "USD"),
    ("1.2999", "USD"),  # four decimals
    ("1,299.999.00", "USD"),  # two ways of grouping
    ("1,299 2", "USD"),
    ("0,299", "USD"),  # thousands cannot start with 0, and USD has no third decimal
    ("1.299.–", "EUR"),  # the dash's separator is the grouping one
    ("129.00,-", "EUR"),  # cents and "no cents" at once
    ("129.", "USD"),  # a dot not after a currency word
    ("$10,000,000.00", "USD"),  # ten million and more: no price nudge takes
    ("1" * 400, "USD"),  # huge
    ("$" + "1" * 200, "USD"),
    ("&amp;pound;129.00", "GBP"),  # decoded once only: "&pound;" is text here
])
def test_text_that_is_not_one_price_is_none(text: str, currency: str) -> None:
    assert read_price_text(text, currency) is None


def test_minor_digits_follow_iso_4217() -> None:
    assert (minor_digits("USD"), minor_digits("JPY"), minor_digits("KWD"), minor_digits("XYZ")) == (2, 0, 3, 2)


# -- reading an element as HTMLRewriter streams it -----------------------------------------------------


def read(*chunks: str, offer: Redeemed = TEN_PERCENT, currency: str = "GBP") -> str | None:
    reader = TextPriceReader(offer, currency)
    reader.start()
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def test_chunks_are_read_as_one_text_whatever_their_cuts() -> None:
    # WooCommerce: <bdi><span class="woocommerce-Price-currencySymbol">&pound;</span>129.00</bdi>,
    # and HTMLRewriter's empty last chunk of each text node
    assert read("&pound;", "", "129.00", "") == "£116.10"
    assert read("&po", "und;12", "9.", "00") == "£116.10"  # a character reference cut in two


def test_what_is_not_one_price_is_left_alone() -> None:
    assert read("Call us") is None
    assert read("£150.00", "Original price was: £150.00.", "£129.00") is None
    assert read("£0.00") is None  # nothing off: nothing to show
    assert read("£129.00", offer=Redeemed("r", "C", 0, "sneakers", 2_000_000_000)) is None


def test_an_amount_offer_never_goes_below_zero() -> None:
    assert read("£8.00", offer=Redeemed("r", "FIVE", 0, "sneakers", 2_000_000_000, 10.0)) == "£0.00"


def test_text_past_the_bound_is_no_price() -> None:
    assert read(" " * (MAX_TEXT - 7), "£129.00") == "£116.10"
    assert read(" " * (MAX_TEXT - 6), "£129.00") is None
    assert read(*([" "] * 10_000), "£129.00") is None  # and the reader stops keeping it


def test_one_element_at_a_time_and_a_priced_element_inside_spoils_it() -> None:
    reader = TextPriceReader(TEN_PERCENT, "GBP")
    assert not reader.reading
    reader.start()
    reader.feed("£129.00")
    assert reader.reading
    reader.spoil()  # a marked price inside was rewritten: its text is part of this one's
    assert reader.finish() is None and not reader.reading
    reader.spoil()  # nothing being read: nothing to spoil
    reader.start()
    reader.feed("£129.00")
    assert reader.finish() == "£116.10"
    reader.feed("£99.00")  # text outside any element being read is not kept
    reader.start()
    assert reader.finish() is None
