"""The page flow: the shopper's request goes to the origin (from the edge cache when the origin
allows it) while the visitor's KV reads run alongside; an HTML page then gets nudge's decisions
written into it as it streams; anything else passes through. The origin's errors pass as they are;
one that never answers gets the edge's own 504 or 502. When nudge itself fails, the shopper gets
the origin's answer (`fallback`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult

import js

from nudge.delivery.csp import plan_injection
from nudge.delivery.exclusions import is_excluded
from nudge.delivery.page_policy import (
    edge_cacheable,
)
from nudge.engine import Engine, KeyEvent, PagePlan
from nudge.failures import fail_open
from nudge.followups.planning import Before
from nudge.kv_keys import product_key, profile_key
from nudge.offers import OFFER_APPLIED_HEADER, Redeemed
from nudge.rules.preview import Preview
from nudge.runtime.bindings import (
    Kv,
    WorkersError,
    absent,
    env_int,
    env_str,
    js_errors,
    record,
    started,
)
from nudge.runtime.cart import cart_followed
from nudge.runtime.http import (
    edge_error,
    headers_of,
    origin_request,
    page_request,
    read_body,
    secure,
    site,
    with_headers,
)
from nudge.runtime.isolate import memory, recent_profiles
from nudge.runtime.origin import is_page_answer, origin_under_way, relocated, shops_word
from nudge.runtime.profiles import (
    link_identity,
    mark_order,
    no_link,
    order_unseen,
    profile_writes,
    record_key_event,
    write_profile,
)
from nudge.runtime.queue import follow_up, withdrawn
from nudge.runtime.rewriter import Learner, rewrite
from nudge.timing import OwnTime
from nudge.visit_reports import visit_begun
from nudge.visitor.cart import MAX_CART_BODY
from nudge.visitor.cart_routes import RouteMatch, match_route
from nudge.visitor.cookies import parse_cookies
from nudge.visitor.learned_catalog import decode_facts
from nudge.visitor.privacy import PRIVACY_HEADERS
from nudge.visitor.product_facts import ProductFacts
from nudge.visitor.profile import decode_profile
from nudge.visitor.purchases import ShopOrder, parse_order_header
from nudge.visitor.session import COOKIE_NAME, Session

__all__ = ["page"]

log = logging.getLogger("nudge")

KV_BUDGET = 0.05  # seconds we wait for the profile once the origin has answered
ORIGIN_TIMEOUT = 100  # seconds to wait for the origin's response headers (NUDGE_ORIGIN_TIMEOUT_SECONDS)


@dataclass
class _Visit:
    """What nudge knows about the request before the origin answers."""

    app: Engine | None = None  # None: pass the origin's response through untouched
    status: str = "untracked"  # "tracked", "untracked" or "automated" (Engine.visitor_status)
    session: Session | None = None  # a tracked visitor's is decoded once the origin request is sent
    offer: Redeemed | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    preview: Preview | None = None  # a marketer's preview: that rule at once, nothing stored

    @property
    def tracked(self) -> bool:
        return self.app is not None and self.status == "tracked"


def _read_visitor(js_req: Any, app: Engine | None, now: int) -> _Visit:
    if app is None:
        return _Visit()
    with fail_open("reading the visitor failed; passing the page through"):  # never costs the page
        cookies = parse_cookies(js_req.headers.get("cookie"))
        status = app.visitor_status(headers_of(js_req, PRIVACY_HEADERS), cookies)
        if status == "automated":  # bots and prefetches get the origin's page untouched
            return _Visit(status=status)
        preview = app.preview_of(cookies, now)
        if preview is not None:
            return _Visit(app, "preview", Session.fresh(now), None, cookies, preview)
        if status != "tracked":  # a throwaway session: never stored, never sent
            return _Visit(app, status, Session.fresh(now), None, cookies)
        return _Visit(app, status, None, app.active_offer(cookies, now), cookies)  # the session: _session_read
    return _Visit()


@dataclass
class _Reads:
    """What runs alongside the origin fetch (tasks, or None): the profile, the product's facts when
    the isolate does not know them, and a cart POST's body."""

    profile: Any = None
    facts: Any = None
    cart_body: Any = None
    read_for: str = ""  # the profile key being read
    held: bytes | None = None  # the profile this isolate read or wrote in the last minute (no KV read)
    slug: str | None = None  # the product page's slug, when its category must come from learned facts
    known: ProductFacts | None = None  # its facts, when the isolate's catalog has them

    def cancel(self, cart: bool = True) -> None:
        for task in (self.profile, self.facts, self.cart_body if cart else None):
            if task is not None:
                task.cancel()


async def _within_budget(task: Any, what: str) -> tuple[bytes | None, bool]:
    """(value, landed) of a KV read started alongside the origin fetch: landed when it answered
    within KV_BUDGET of the origin's response (so KV has the origin's whole time plus 50 ms). A
    slower read is not cancelled (a write that must merge into the real value can still await it);
    a failed one is logged."""
    if task is None:
        return None, False
    try:
        result: bytes | None = await asyncio.wait_for(asyncio.shield(task), KV_BUDGET)
        return result, True
    except (TimeoutError, WorkersError, TypeError, ValueError) as exc:
        log.warning("nudge: %s read skipped: %r", what, exc)
        return None, False


async def page(js_req: Any, env: Any, ctx: Any, parts: SplitResult, configured: Engine | None,
               clock: OwnTime) -> Any:
    """The answer to a request for anything but nudge's own endpoints."""
    now = int(time.time())
    if configured is not None and is_excluded(parts.path, configured.ruleset.settings.exclude):
        configured = None  # [site] exclude (the shop's admin): passed through as if nudge were not there
    return await _PageFlow(js_req, env, ctx, parts, clock, _read_visitor(js_req, configured, now), now).run()


class _PageFlow:
    """One page request, from the origin fetch to the rewritten response."""

    def __init__(self, js_req: Any, env: Any, ctx: Any, parts: SplitResult, clock: OwnTime, visit: _Visit,
                 now: int) -> None:
        self.js_req, self.env, self.ctx, self.parts, self.clock = js_req, env, ctx, parts, clock
        self.visit, self.now = visit, now
        self.origin = str(env.ORIGIN_URL).rstrip("/")
        self.action: RouteMatch | None = None  # a request to one of the shop's cart routes
        self.cart_header: str | None = None  # the shop's X-Nudge-Cart (a tracked visitor's only)
        self.profile_from = "none"  # the page log line's "profile"

    async def run(self) -> Any:
        js_req, parts, visit, app = self.js_req, self.parts, self.visit, self.visit.app
        if visit.status == "untracked" and app is not None and app.followups_enabled and COOKIE_NAME in visit.cookies:
            withdrawn(self.env, self.ctx, app, visit.cookies)
        extra = app.origin_headers(visit.offer) if app is not None else {}
        # Start the origin fetch and the KV reads together; none waits for another.
        action = match_route(app.cart, str(js_req.method), parts.path, parts.query) if visit.tracked and app else None
        self.action = action
        reads = _Reads(cart_body=started(read_body(js_req.clone(), MAX_CART_BODY))
                       if action and action.method == "POST" else None)
        target = self.origin + parts.path + (f"?{parts.query}" if parts.query else "")
        cache_key = target if app is not None and self._cacheable(extra) else None
        abort = js.AbortController.new()
        request = await self.clock.waiting(origin_request(js_req, target, parts, extra, abort.signal))  # reads a body
        origin_task = origin_under_way(request, cache_key, self.ctx)  # on its way: the rest overlaps it
        if not self._session_read():
            self.visit, app = _Visit(), None  # the origin's page, untouched
        self._start_reads(reads)
        resp, answered = await self._origin_answer(origin_task, abort, reads)
        if not answered:
            return resp
        resp = relocated(resp, self.origin, parts)
        resp, user, order_header, cart_header = shops_word(resp)
        self.cart_header = cart_header if visit.tracked else None
        session = visit.session
        if app is None or session is None or not is_page_answer(js_req, resp):
            reads.cancel(cart=False)
            if (action or self.cart_header) and app is not None and session is not None:
                return await self._cart_seen(app, session, reads.cart_body, resp)
            return resp
        return await self._personalized(app, session, resp, user, order_header, reads)

    def _session_read(self) -> bool:
        """A tracked visitor's session, decoded while the origin answers; False if that failed."""
        visit = self.visit
        if visit.app is None or visit.status != "tracked" or visit.session is not None:
            return True
        with fail_open("reading the visitor failed; passing the page through"):  # never costs the page
            visit.session = visit.app.load_session(visit.cookies, self.now)
            return True
        return False

    def _cacheable(self, extra: dict[str, str]) -> bool:
        request_headers = headers_of(self.js_req, ("range", "authorization"))
        return edge_cacheable(env_str(self.env, "NUDGE_EDGE_CACHE"), str(self.js_req.method), extra, request_headers)

    def _start_reads(self, reads: _Reads) -> None:
        app, session = self.visit.app, self.visit.session
        reads.read_for = profile_key(session.visitor_id) if session is not None else ""
        if not (self.visit.tracked and app is not None and session is not None):
            return
        kv = Kv(self.env)
        # A visit's first page reads KV (its write merges into the freshest value); later pages
        # take what this isolate read or wrote in the last minute, when it has it.
        reads.held = None if session.is_new else recent_profiles.get(session.visitor_id)
        if reads.held is None:
            reads.profile = started(kv.get(reads.read_for))
        early = app.ruleset.classifier.classify(self.parts.path)
        if early.type == "product" and early.product and not early.category:
            reads.slug = early.product  # the category must come from facts learned from the page
            reads.known = memory.learned.get(reads.slug)
            if reads.known is None:
                reads.facts = started(kv.get(product_key(reads.slug)))

    async def _origin_answer(self, origin_task: Any, abort: Any, reads: _Reads) -> tuple[Any, bool]:
        """(the origin's response, True), or (the edge's own 504/502, False) when it gave none."""
        timeout = env_int(self.env, "NUDGE_ORIGIN_TIMEOUT_SECONDS", 1, 600, ORIGIN_TIMEOUT)
        try:
            return await self.clock.waiting(asyncio.wait_for(origin_task, timeout)), True
        except TimeoutError:
            abort.abort()  # the origin may still answer: nobody is listening any more
            log.error("nudge: origin did not answer within %s s: %s %s", timeout, self.js_req.method,
                      self.parts.path)
            reads.cancel()
            return edge_error(504, "Gateway Timeout: the shop did not answer in time\n"), False
        except WorkersError as exc:  # unreachable, or a body the runtime cannot decode (_decodable)
            log.error("nudge: origin fetch failed: %s", exc)
            reads.cancel()
            return edge_error(502, "Bad Gateway: the shop could not be reached\n"), False

    async def _personalized(self, app: Engine, session: Session, resp: Any, user: str | None,
                            order_header: str | None, reads: _Reads) -> Any:
        """The page with nudge's decisions written in, once the profile (and an identity link)
        was read within its budget; the origin's page as it is when that fails."""
        visit, env, now = self.visit, self.env, self.now
        # The identity lookup (the origin named its customer) and the profile read share one budget.
        order = parse_order_header(order_header) if visit.tracked else None
        (linked, late_link), (stored, landed), order_new = await self._stored(app, session, user, order, reads)
        same_profile = profile_key(session.visitor_id) == reads.read_for
        if not same_profile:  # an identity link adopted another visitor id: its profile was not read
            stored, landed = None, False
        profile = decode_profile(stored)
        facts = await self._facts(reads)
        with fail_open("personalizing the page failed; passing it through"):
            if self.action or self.cart_header:  # a cart link answered with a page (GET /?add-to-cart=ID)
                await self._cart_changed(app, session, None, resp)  # or the shop's word
            bought = self._order_counted(app, session, order if order_new else None)
            csp = resp.headers.get("content-security-policy")
            injection = plan_injection(str(csp) if isinstance(csp, str) else None, site(self.parts))
            plan = app.plan_page(memory, page_request(self.js_req, self.parts), session, visit.offer, profile, now,
                                 tracked=visit.tracked, cookies=visit.cookies, facts=facts, injection=injection,
                                 preview=visit.preview,  # the shop says it priced the page with the offer:
                                 offer_confirmed=not absent(resp.headers.get(OFFER_APPLIED_HEADER)))
            rewritten = self._rewritten(app, resp, plan)
            new_visit = plan.profile_write is not None
            write = None
            if new_visit or linked or late_link is not None:
                write = write_profile(env, app, session, now, plan.profile_write if landed else None, new_visit,
                                      reads.profile if same_profile else None, linked, late_link)
            if write is not None or bought is not None:  # one after the other: each merges into what KV holds
                self.ctx.waitUntil(profile_writes(env, session.visitor_id, write, bought, now))
            self.clock.pause()  # until HTMLRewriter calls the handlers
            return rewritten
        return resp

    async def _stored(self, app: Engine, session: Session, user: str | None, order: ShopOrder | None,
                      reads: _Reads) -> tuple[tuple[str | None, Any], tuple[bytes | None, bool], bool]:
        """(identity link, (stored profile, landed), order unseen): the identity lookup (the origin
        named its customer), the profile read and the order guard, sharing one budget. A typical
        page has only the profile to wait for, or nothing when the isolate holds it."""
        read = self._profile_read(session, reads)
        if user is not None and self.visit.tracked:
            link = link_identity(self.env, self.ctx, app, session, user, self.now, KV_BUDGET)
        elif order is None:
            return (None, None), await self.clock.waiting(read), False
        else:
            link = no_link()
        return await self.clock.waiting(asyncio.gather(link, read, order_unseen(self.env, app, order)))

    async def _profile_read(self, session: Session, reads: _Reads) -> tuple[bytes | None, bool]:
        """(stored profile, landed): the one this isolate holds, or what KV answered within its
        budget (kept for the next minute)."""
        if reads.held is not None:
            self.profile_from = "held"
            return reads.held, True
        stored, landed = await _within_budget(reads.profile, "profile")
        if landed:
            recent_profiles.keep(session.visitor_id, stored)
        self.profile_from = "none" if reads.profile is None else "kv" if landed else "late"
        return stored, landed

    async def _facts(self, reads: _Reads) -> ProductFacts | None:
        """The product's facts: the isolate's, or those KV answered within the budget."""
        if reads.facts is None or reads.slug is None:
            return reads.known
        facts = decode_facts((await self.clock.waiting(_within_budget(reads.facts, "catalog")))[0])
        if facts is not None:
            memory.learned.remember(reads.slug, facts)
        return facts

    def _rewritten(self, app: Engine, resp: Any, plan: PagePlan) -> Any:
        """Records the page's events and follow-ups, and streams it through HTMLRewriter."""
        visit, clock = self.visit, self.clock
        record(self.env, self.ctx, app.rules_version, plan.events, self.now)
        follow_up(self.env, self.ctx, plan.followups, self.now)
        learn = Learner(memory.learned, self.env, self.ctx, plan.learn, clock) if plan.learn and visit.tracked else None
        status, version, profile = visit.status, app.rules_version, self.profile_from
        # NUDGE_PAGE_LOG_PERCENT: the share of pages that get their line (each costs a console write)
        logged = random.randrange(100) < env_int(self.env, "NUDGE_PAGE_LOG_PERCENT", 0, 100, 100)

        def log_line(ended: bool) -> None:  # one line per page, once its body has gone through
            if logged:
                print(plan.log_line(status, version, round(clock.seconds * 1000, 2), clock.calls, ended, profile))

        return rewrite(resp, plan, clock, log_line, learn)

    def _order_counted(self, app: Engine, session: Session, order: ShopOrder | None) -> KeyEvent | None:
        """A confirmed order KV has not counted yet: into the session, its conversion measured and
        its follow-ups cancelled now; the returned KeyEvent is merged into the profile after the
        response."""
        bought = app.order_seen(order, session, self.now, site(self.parts)) if order is not None else None
        if bought is not None and order is not None:
            self.ctx.waitUntil(mark_order(self.env, app, order))  # first: the sooner in KV, the smaller the window
            record(self.env, self.ctx, app.rules_version, bought.events, self.now)
            follow_up(self.env, self.ctx, bought.followups, self.now)
        return bought

    async def _cart_seen(self, app: Engine, session: Session, cart_body: Any, resp: Any) -> Any:
        """A request to a shop's cart route, or the shop's X-Nudge-Cart on a response that is not a
        page: the session's cart follows, its cookie goes with the response."""
        try:
            with js_errors():
                if not await self._cart_changed(app, session, cart_body, resp):
                    return resp
                began = visit_begun(session)
                if began is not None:  # the cookie stores the visit's start: no page will be its first
                    self.ctx.waitUntil(record_key_event(self.env, session.visitor_id, KeyEvent(began_visit=began),
                                                        self.now))
                return with_headers(resp, append=[("set-cookie", app.session_cookie(session, secure(self.parts)))])
        except (WorkersError, ValueError, TypeError):
            log.exception("nudge: reading a cart change failed; response passed through")
            return resp

    async def _cart_changed(self, app: Engine, session: Session, cart_body: Any, resp: Any) -> bool:
        """The cart change into the session, its off-page follow-ups planned; True when it changed."""
        before = Before.of(session)
        if not await cart_followed(app, self.js_req, self.parts, self.origin, session, self.action, cart_body,
                                   self.cart_header, resp, self.now):
            return False
        follow_up(self.env, self.ctx, app.off_page_followups(before, session, self.now, site(self.parts)), self.now)
        return True
