"""Prices with the visitor's discount, as HTMLRewriter streams a page: the elements the page marks
for nudge and those `[site] prices` names. Glue only: which prices apply and how their text reads
are in the core (delivery/price_selectors.py, delivery/price_text.py). Every handler is timed into
the page's own time and never lets an error out (that would break the stream mid-page).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nudge.delivery import render
from nudge.delivery.price_selectors import offer_applies, scoped
from nudge.delivery.price_text import TextPriceReader, read_price_text
from nudge.failures import fail_open
from nudge.offers import Redeemed
from nudge.page_plan import PagePlan
from nudge.runtime.bindings import html_content
from nudge.timing import OwnTime

__all__ = ["Prices"]


class Prices:
    """Shows prices with the visitor's discount where the cart charges it but the page does not
    show it (`apply = "header"` with `[shop] offer_header = "honoured"`, offer_apply.py): marked ones,
    `data-nudge-price="129.00"` or schema.org microdata `itemprop="price" content="129.00"`, whose
    value comes from the attribute and whose whole content is replaced; and those `[site] prices`
    names (price_selectors.py), read from an attribute the same way or from their text
    (`_TextPrices`). A price marked `data-nudge-category="..."` is rewritten on any page when that is
    the offer's category (and never when it is another); an unmarked one only on pages of the
    offer's category."""

    def __init__(self, clock: OwnTime, proxy: Callable[[Any], Any], offer: Redeemed, plan: PagePlan) -> None:
        self.clock, self.proxy, self.offer, self.currency = clock, proxy, offer, plan.currency
        self.page_matches = plan.page_category == offer.category
        self.selectors = plan.price_selectors
        self.reader = TextPriceReader(offer, plan.currency)

    def applies(self, el: Any) -> bool:
        category = el.getAttribute("data-nudge-category")
        return offer_applies(self.offer.category, self.page_matches, category if isinstance(category, str) else None)

    def unpriced(self, el: Any) -> bool:
        """An element nudge may price: not priced yet (it may match two selectors), nor inside one
        whose content was replaced, and the offer applies to it."""
        return not el.removed and not el.hasAttribute("data-nudge-priced") and self.applies(el)

    def rewrite(self, el: Any) -> None:
        if not self.applies(el):
            return
        marked = el.getAttribute("data-nudge-price")
        if not isinstance(marked, str):
            marked = el.getAttribute("content")  # microdata (the selector skips meta and link)
        prices = self.offer.price_after(marked if isinstance(marked, str) else None)
        if prices is None:
            return
        self._show(el, *prices)
        if isinstance(el.getAttribute("content"), str):
            el.setAttribute("content", f"{prices[1]:.2f}")

    def rewrite_from(self, el: Any, attribute: str) -> None:
        """An element `[site] prices` names with the attribute its price is in."""
        value = el.getAttribute(attribute) if self.unpriced(el) else None
        price = read_price_text(value, self.currency) if isinstance(value, str) else None
        if price is not None:
            self._show(el, price.amount, self.offer.discounted(price.amount, price.minor))

    def _show(self, el: Any, was: float, now: float) -> None:
        el.setInnerContent(render.ascii_html(render.price(was, now, self.currency)), html_content())
        el.setAttribute("data-nudge-priced", "")
        self.reader.spoil()  # an element whose text is being read around this one is no price of its own

    def register(self, rewriter: Any) -> Any:
        """`rewriter` with the `[site] prices` selectors: as written on pages of the offer's category,
        elsewhere narrowed to elements marked with it (so HTMLRewriter calls nudge for no other). A
        selector HTMLRewriter refuses (rules check lets none through) is left out, not the page."""
        text = []
        for spec in self.selectors:
            selector = spec.selector if self.page_matches else scoped(spec.selector, self.offer.category)
            if not spec.attribute:
                text.append(selector)
                continue
            with fail_open(f"HTMLRewriter refused the price selector {selector!r}"):
                rewriter = rewriter.on(selector, self.proxy(_AttributePrices(self, spec.attribute)))
        if text:  # one selector list: a text chunk inside nested matches comes once
            with fail_open(f"HTMLRewriter refused the price selectors {text!r}"):
                rewriter = rewriter.on(", ".join(text), self.proxy(_TextPrices(self)))
        return rewriter


class _AttributePrices:
    """Elements `[site] prices` names whose price is in an attribute: shown like marked prices."""

    def __init__(self, prices: Prices, attribute: str) -> None:
        self.prices, self.attribute = prices, attribute

    def element(self, el: Any) -> None:
        started = self.prices.clock.timer()
        with fail_open("rewriting a price failed; left as is"):
            self.prices.rewrite_from(el, self.attribute)
        self.prices.clock.handler_call(started)


class _TextPrices:
    """Elements `[site] prices` names whose price is in their text. Nothing of the shop's is
    removed: the text is read as it streams by (price_text.TextPriceReader) and, at the element's
    end tag, the discounted price goes in after it, which nudge's style strikes through. Text that
    is not one price leaves the element as it was (and text chunks cannot be taken back once they
    have streamed on). Its own proxy: it takes text chunks, which other elements must not be sent."""

    NEVER = ("html", "head", "body")  # their end tags are _Markup's

    def __init__(self, prices: Prices) -> None:
        self.prices, self.reader, self.clock = prices, prices.reader, prices.clock
        self.at_end = prices.proxy(self._end)

    def element(self, el: Any) -> None:
        started = self.clock.timer()
        with fail_open("reading a price failed; left as is"):
            if not self.reader.reading and el.tagName not in self.NEVER and self.prices.unpriced(el):
                el.onEndTag(self.at_end)  # first: it throws for an element without an end tag
                self.reader.start()
                el.setAttribute(render.TEXT_PRICE_MARK, "")
        self.clock.handler_call(started)

    def text(self, chunk: Any) -> None:
        started = self.clock.timer()
        with fail_open("reading a price failed; left as is"):
            self.reader.feed(str(chunk.text))
        self.clock.handler_call(started)

    def _end(self, end: Any) -> None:
        started = self.clock.timer()
        with fail_open("showing a price failed; left as is"):
            now = self.reader.finish()
            if now is not None:
                end.before(render.ascii_html(render.text_price(now)), html_content())
        self.clock.handler_call(started)
