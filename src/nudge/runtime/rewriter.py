"""HTMLRewriter for one page: nudge's markup into head and body, the slots rules chose, prices
with the visitor's discount, the product facts learned as the page streams by, and the
lifetime of the proxies handed to JS for all of that. Every handler is timed into the page's own
time and never lets an error out (that would break the stream mid-page).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import js
from pyodide.ffi import create_proxy

from nudge.delivery import render
from nudge.engine import PagePlan
from nudge.failures import fail_open
from nudge.kv_keys import CATALOG_TTL, product_key
from nudge.runtime.bindings import Kv, html_content
from nudge.runtime.http import rebuilt
from nudge.runtime.price_rewriter import Prices
from nudge.timing import OwnTime
from nudge.visitor.learned_catalog import LearnedCatalog, encode_facts
from nudge.visitor.product_facts import META_KEYS, ProductFactsCollector

__all__ = ["Learner", "rewrite"]

# Prices: marked ones, and microdata with visible text (not meta/link). The product facts: the
# meta tags the collector reads, not every og: tag (any case and spacing, as it accepts them).
_PRICES = '[data-nudge-price], [itemprop="price"]:not(meta):not(link)'
_FACT_METAS = ", ".join(f'meta[property*="{key}" i]' for key in sorted(META_KEYS))


class _Markup:
    """nudge's markup for one page, and where it has gone: the style at the start of <head> (at the
    start of <body> when the page has no <head>), banners right after <body>, the config and client
    script before </body>, or at the end of the document when the page opened <body> and never
    closed it (</head>, </body> and </html> are all optional in HTML). A fragment without <body> gets
    nothing put in a body it does not have. Each piece goes in once; what is inserted is ASCII
    (character references for the rest), so it reads right in any ASCII-compatible charset the page
    declares. The end-tag call is timed into the page's own time."""

    def __init__(self, clock: OwnTime, jar: _ProxyJar, head: str, body_start: str, body_end: str) -> None:
        self.clock, self.jar = clock, jar
        self.style, self.start, self.end = (render.ascii_html(html) for html in (head, body_start, body_end))
        self.body_seen = self.style_placed = self.end_placed = False

    def head(self, el: Any) -> None:
        if self.style_placed or not self.style:
            return
        self.style_placed = True  # at the start: no need to wait for a </head> the page may not have
        el.prepend(self.style, html_content())

    def body(self, el: Any) -> None:
        if self.body_seen:
            return
        self.body_seen = True
        first = self.start if self.style_placed else self.style + self.start
        self.style_placed = True
        if first:
            el.prepend(first, html_content())
        if self.end:
            el.onEndTag(self.jar.proxy(self._before_body_end))

    def _before_body_end(self, end: Any) -> None:
        started = self.clock.timer()
        with fail_open("injection failed; page left as is"):
            if not self.end_placed:
                self.end_placed = True
                end.before(self.end, html_content())
        self.clock.handler_call(started)

    def document_end(self, end: Any) -> None:
        if self.body_seen and self.end and not self.end_placed:
            self.end_placed = True
            end.append(self.end, html_content())


class _PageRewriter:
    """What HTMLRewriter calls for one page: it injects into head and body (`_Markup`), fills the
    slots rules chose and rewrites marked prices, then at the document's end has the product facts
    learned and the page logged. One object for the elements: one proxy crosses into JS per page,
    and making one costs more than telling a handful of elements apart by tag. Every call is timed
    into the page's own time and never lets an error out (that would break the stream mid-page)."""

    def __init__(self, clock: OwnTime, jar: _ProxyJar, plan: PagePlan, learn: Learner | None) -> None:
        self.clock, self.jar, self.learn = clock, jar, learn
        self.markup = _Markup(clock, jar, plan.head, plan.body_start, plan.body_end)
        self.slots = dict(plan.slots)  # emptied as they are filled: the first element of a name only
        self.prices = Prices(clock, jar.proxy, plan.prices, plan) if plan.prices is not None else None

    def selector(self) -> str:
        """Only the elements this page needs: head, body, the slots a rule fills, and prices when
        an offer applies."""
        parts = ["head", "body", *(f'[data-nudge-slot="{slot}"]' for slot in self.slots)]
        return ", ".join(parts + ([_PRICES] if self.prices is not None else []))

    def element(self, el: Any) -> None:
        started = self.clock.timer()
        with fail_open("rewriting an element failed; left as is"):
            tag = el.tagName
            if tag == "head":
                self.markup.head(el)
            elif tag == "body":
                self.markup.body(el)
            else:
                slot = el.getAttribute("data-nudge-slot") if self.slots else None
                if isinstance(slot, str) and slot in self.slots:
                    self._fill(el, *self.slots.pop(slot))
                elif self.prices is not None:
                    self.prices.rewrite(el)
        self.clock.handler_call(started)

    @staticmethod
    def _fill(el: Any, mode: str, html: str) -> None:
        """A slot: its content replaced (the site's own content is the fallback, so it stays when
        no rule fills the slot) or a badge appended. Whole elements only: HTMLRewriter delivers
        text in arbitrary chunks."""
        html = render.ascii_html(html)
        if mode == "append":
            el.append(html, html_content())
        else:
            el.setInnerContent(html, html_content())

    def end(self, end: Any) -> None:
        started = self.clock.timer()
        with fail_open("injection failed; page left as is"):
            self.markup.document_end(end)
        with fail_open("learning product facts failed"):
            if self.learn is not None:
                self.learn.finish()
        self.clock.handler_call(started)
        self.jar.close(ended=True)


class Learner:
    """Reads a product page's JSON-LD and og/product meta tags as they stream by; at the end of the
    document the facts go to the isolate's catalog and, when new, to KV. Its own proxy: it takes
    text chunks, which the page's other elements must not be sent."""

    def __init__(self, learned: LearnedCatalog, env: Any, ctx: Any, slug: str, clock: OwnTime) -> None:
        self.learned, self.env, self.ctx, self.slug, self.clock = learned, env, ctx, slug, clock
        self.collector = ProductFactsCollector()

    def text(self, chunk: Any) -> None:
        started = self.clock.timer()
        with fail_open("reading JSON-LD failed"):  # never break the stream over a product fact
            self.collector.feed_json_ld(str(chunk.text), bool(chunk.lastInTextNode))
        self.clock.handler_call(started)

    def element(self, el: Any) -> None:
        started = self.clock.timer()
        with fail_open("reading meta tags failed"):
            if el.tagName == "meta":
                prop, content = el.getAttribute("property"), el.getAttribute("content")
                self.collector.feed_meta(prop if isinstance(prop, str) else None,
                                         content if isinstance(content, str) else None)
        self.clock.handler_call(started)

    def finish(self) -> None:
        facts = self.collector.facts()
        if facts is not None and self.learned.remember(self.slug, facts):
            self.ctx.waitUntil(Kv(self.env).keep(product_key(self.slug), encode_facts(facts), CATALOG_TTL))


class _ProxyJar:
    """Proxies handed to HTMLRewriter for one response. They must outlive `fetch` (the body streams
    later), so they are destroyed after the document ends, or swept if the stream was abandoned.
    `report(ended)` runs once either way (the page's log line)."""

    open: list[_ProxyJar] = []
    MAX_AGE = 120.0

    def __init__(self, report: Callable[[bool], None]) -> None:
        self.proxies: list[Any] = []
        self.born = time.monotonic()
        self.done = False
        self.report = report
        _ProxyJar.sweep()
        _ProxyJar.open.append(self)

    def proxy(self, obj: Any) -> Any:
        p = create_proxy(obj)
        self.proxies.append(p)
        return p

    def close(self, ended: bool) -> None:
        if not self.done:
            self.done = True  # destroyed on the next sweep, outside the handler that is running now
            self.report(ended)

    @classmethod
    def sweep(cls) -> None:
        now = time.monotonic()
        keep = []
        for jar in cls.open:
            if jar.done or now - jar.born > cls.MAX_AGE:
                jar.close(ended=False)  # no-op for a document that ended
                for p in jar.proxies:
                    p.destroy()
            else:
                keep.append(jar)
        cls.open = keep


def rewrite(origin_resp: Any, plan: PagePlan, clock: OwnTime, report: Callable[[bool], None],
            learn: Learner | None = None) -> Any:
    """The page streamed through HTMLRewriter, anchored on head, body and the elements the page
    marks for nudge, so few handler calls cross into Python (4 on a typical page: head, body,
    </body> and the document's end; one more per filled slot or rewritten price, and where an
    offer's prices are shown, those for the elements `[site] prices` names and their text)."""
    base = rebuilt(origin_resp)  # status, text and a mutable copy of the headers
    headers = base.headers
    # nudge's own time so far (reading the visitor, deciding, rendering); the handler calls while
    # the body streams come after the headers are sent: the page's log line has the total
    headers.append("server-timing", f'nudge;dur={clock.pause() * 1000:.2f};desc="nudge before body"')
    clock.resume()
    headers.delete("content-length")
    headers.set("cache-control", "private, no-store")  # personalized: no shared cache may keep it
    headers.append("vary", "Cookie")
    for cookie in plan.set_cookies:
        headers.append("set-cookie", cookie)
    jar = _ProxyJar(report)
    page = _PageRewriter(clock, jar, plan, learn)
    handler = jar.proxy(page)
    rewriter = js.HTMLRewriter.new().on(page.selector(), handler)
    if page.prices is not None:  # an offer whose prices nudge shows: the elements [site] prices names
        rewriter = page.prices.register(rewriter)
    if learn is not None:  # only product pages whose facts nudge does not know yet
        reader = jar.proxy(learn)
        rewriter = rewriter.on(f'script[type="application/ld+json"], {_FACT_METAS}', reader)
    return rewriter.onDocument(handler).transform(base)


