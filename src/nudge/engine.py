"""nudge's request handling in plain Python: what to do with a page, a beacon, a redemption.

`nudge.edge` does the I/O (origin fetch, KV, HTMLRewriter) and asks this module for decisions;
nothing here touches the Workers runtime, so all of it is unit-tested in CPython.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import parse_qs, quote

from nudge.delivery import render
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.beacon import Beacon, BeaconError, parse_beacon
from nudge.visitor.beacon import Event as BeaconEvent
from nudge.visitor.identity import identity_hash, verify_shop_token
from nudge.visitor.cookies import OUR_COOKIES, set_cookie
from nudge.rules.decide import Nudge, decide
from nudge.offers import OFFER_COOKIE, OFFER_HEADER, OfferTokens, Redeemed, offer_expiry
from nudge.visitor.learned_catalog import LearnedCatalog
from nudge.visitor.pages import Page, same_site_path
from nudge.visitor.product_facts import ProductFacts
from nudge.visitor.privacy import ConsentPolicy, is_automated, may_track
from nudge.visitor.profile import Profile, merged_profile
from nudge.kv_keys import KEEP_VISITOR, code_ledger_key, order_key, visitor_key
from nudge.visitor.purchases import ShopOrder
from nudge.delivery.csp import UNRESTRICTED, Injection
from nudge.events import Event, rule_event
from nudge.followups.messages import FollowUp, IssuedCode
from nudge.followups.planning import Before, FollowUpPlan, plan_followups
from nudge.followups.webhook import cart_items, suggestions, webhook_body
from nudge.rules.explain import explain_html, explain_json, verdicts
from nudge.visitor.cart_truth import cart_explained
from nudge.guard import BEACON_MEDIA_TYPE, beacon_media_refusal
from nudge.rules.preview import PREVIEW_COOKIE, Preview, PreviewTokens
from nudge.rules.recommend import recommend
from nudge.rules.model import Rule, RuleSet
from nudge.rules.templates import MissingValue
from nudge.keys import key32
from nudge.ledger import ENDED, REDEEMED, UNAVAILABLE, USED, LedgerClaim
from nudge.visitor.session import COOKIE_NAME, Session, SessionCodec
from nudge.signing import BadData, Signer
from nudge.visitor.tracking import (apply_beacon, close_rule, credit_dwell, first_time, is_closed, parse_dwell_cookie,
                       record_order, record_page_view, record_served)

PREFIX = "/_nudge/"
BEACON_PATH = PREFIX + "beacon"
REDEEM_PATH = PREFIX + "redeem"
CLIENT_PATH = PREFIX + "client.js"
STYLE_PATH = PREFIX + "nudge.css"
HEALTH_PATH = PREFIX + "health"
EXPLAIN_PATH = PREFIX + "explain"
PREVIEW_PATH = PREFIX + "preview"
FORGET_PATH = PREFIX + "forget"
DWELL_COOKIE = "nudge_dw"
MESSAGE_COOKIE = "nudge_msg"
MESSAGES = {
    "offer-expired": "Sorry, that offer link has expired or was meant for another browser.",
    "offer-used": "You have already used this offer.",
    "offer-ended": "Sorry, that offer has been fully claimed for today.",
    "offer-unavailable": "Sorry, we could not apply that offer just now. Please try the link again in a minute.",
}
SESSION_MAX_AGE = 400 * 24 * 3600
_REFUSED = {USED: "offer-used", ENDED: "offer-ended", UNAVAILABLE: "offer-unavailable"}  # ledger verdict -> message


@dataclass
class Reply:
    """A response nudge answers itself (endpoints under /_nudge/)."""

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PageRequest:
    """What nudge reads from a page request (plain values; the edge extracts them)."""

    context: RequestContext
    query: str = ""
    host: str = ""
    referrer: str | None = None
    secure: bool = True
    site: str = ""  # scheme://host[:port] the shopper used, for links in follow-ups


@dataclass
class KeyEvent:
    """Counts a beacon or redemption reports that belong in the long-term profile."""

    orders: int = 0
    revenue: int = 0  # cents
    redeemed: int = 0
    stopped: tuple[int, ...] = ()  # key32 of rules to stop for good (clicked, or converted)
    events: list[Event] = field(default_factory=list)  # measurement events (not profile changes)
    followups: FollowUpPlan = field(default_factory=FollowUpPlan)
    code: IssuedCode | None = None  # a single-use code this request redeemed (the ledger recorded it)

    def __bool__(self) -> bool:
        return bool(self.orders or self.redeemed or self.stopped)


@dataclass
class PagePlan:
    """What to do with one HTML page: snippets to inject and cookies to set."""

    page: Page
    session: Session
    head: str
    body_start: str
    body_end: str
    set_cookies: list[str]
    profile_write: Profile | None
    nudges: list[Nudge]
    learn: str | None = None  # a product slug whose facts nudge should read from this page
    slots: dict[str, tuple[str, str]] = field(default_factory=dict)  # slot -> ("replace"|"append", html)
    prices: Redeemed | None = None  # rewrite the prices the page marks with this offer's discount
    page_category: str | None = None
    currency: str = "USD"
    events: list[Event] = field(default_factory=list)  # exposures and on-load impressions
    followups: FollowUpPlan = field(default_factory=FollowUpPlan)

    def log_line(self, status: str, rules_version: str, own_ms: float, handlers: int, ended: bool) -> str:
        """One structured JSON line per page: the decision summary, no personal data (no path,
        query, visitor id or attribute values). `own_ms`: nudge's own time on the page, handler
        calls included; `ended`: False when the body stopped streaming before its end."""
        return json.dumps({
            "nudge": "page", "page": self.page.type, "visitor": status, "rules": rules_version, "ms": own_ms,
            "handlers": handlers, "ended": ended,
            "decided": [{"rule": n.rule.id, "variant": n.variant, "group": _group(n)} for n in self.nudges],
            "slots": sorted(self.slots), "prices": self.prices is not None,
        }, separators=(",", ":"))


def _client_nudge(n: Nudge) -> dict[str, object]:
    """What the client script needs to reveal a rendered nudge: how (trigger) and when.
    `counted`: shown as the page loads and already counted by the Worker (no beacon needed)."""
    rule = n.rule
    trigger, value = rule.trigger, rule.trigger_value
    if trigger in ("time_on_page", "cart_abandoned"):
        trigger, value = "time", n.wait  # seconds on this page
    return {"rule": rule.id, "kind": rule.action.kind, "trigger": trigger, "value": value,
            "minDwell": n.min_dwell, "variant": n.variant, "counted": _on_load(n)}


def _group(n: Nudge) -> str:
    return "shadow" if n.shadow else "holdout" if n.held_out else "treatment"


def _on_load(n: Nudge) -> bool:
    """Visible as soon as the page renders: inline content, and banners with no trigger or wait."""
    return n.rule.action.inline or (n.rule.action.kind == "banner" and not n.min_dwell and not n.wait
                                    and n.rule.trigger == "page_load")


def _json(status: int, data: object, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, json.dumps(data), headers=headers or [])


class Engine:
    """Everything nudge decides, for one rule set and one set of secrets (one per isolate)."""

    def __init__(self, ruleset: RuleSet, secrets: list[bytes], client_js: str,
                 consent: ConsentPolicy | None = None, edge_cart: bool = True,
                 rules_version: str = "bundled", shadow: bool = False, explain_token: str = "") -> None:
        if not secrets:  # never a default: without a secret there is nothing to sign with
            raise ValueError("at least one secret is required (NUDGE_SECRET)")
        self._edge_cart = edge_cart
        self.use_ruleset(ruleset, rules_version)
        self.rules_checked = 0.0  # when the edge last looked for published rules
        self.consent = consent or ConsentPolicy("none")
        self._identity_secret = secrets[0]
        self.shop_secret: bytes | None = None  # NUDGE_SHOP_SECRET: verifies the shop's identity tokens
        self.catalog = LearnedCatalog()
        self.codec = SessionCodec(Signer(secrets, "session"))
        self.offers = OfferTokens(Signer(secrets, "offer-token"), Signer(secrets, "offer-cookie"))
        self.previews = PreviewTokens(Signer(secrets, "preview"))
        self.client_js = client_js
        digest = hashlib.sha256(client_js.encode("utf-8")).hexdigest()[:12]
        self.client_src = f"{CLIENT_PATH}?v={digest}"
        self.style_href = f"{STYLE_PATH}?v={hashlib.sha256(render.CSS.encode('utf-8')).hexdigest()[:12]}"
        self.spent: dict[str, int] = {}  # rule id -> UTC day its discount budget ran out
        self.shadow = shadow  # every rule in shadow mode (NUDGE_SHADOW=on)
        self._explain_token = explain_token  # NUDGE_EXPLAIN_TOKEN; empty: /_nudge/explain is off
        self.followups_enabled = False  # the edge turns follow-ups on when a webhook is configured
        self.code_secret = hmac.new(secrets[0], b"nudge/followup-codes", hashlib.sha256).digest()
        self.ledger_secret = hmac.new(secrets[0], b"nudge/ledger-keys", hashlib.sha256).digest()

    def spent_today(self, now: int) -> frozenset[str]:
        day = now // 86_400
        return frozenset(rule for rule, spent_on in self.spent.items() if spent_on == day)

    def budget_spent(self, rule_id: str, used: int, now: int) -> bool:
        """Whether `used` redemptions today exhaust the rule's budget (remembered for decisions)."""
        rule = self.ruleset.rule(rule_id)
        limit = rule.offer.max_per_day if rule and rule.offer else None
        if limit is None or used < limit:
            return False
        self.spent[rule_id] = now // 86_400
        return True

    # -- reading the visitor ------------------------------------------------------------------

    def use_ruleset(self, ruleset: RuleSet, version: str) -> None:
        """Switches to another rule set (a newly published one); caches and secrets stay."""
        self.ruleset = ruleset
        self.rules_version = version
        self.cart = ruleset.cart if self._edge_cart else None  # cart endpoints watched at the edge

    def visitor_status(self, headers: dict[str, str], cookies: dict[str, str]) -> str:
        """"automated" (bots, prefetch: the page passes untouched), "untracked" (no consent: page
        and request attributes only, nothing stored) or "tracked"."""
        if is_automated(headers):
            return "automated"
        return "tracked" if may_track(self.consent, headers, cookies) else "untracked"

    def erase_cookies(self, cookies: dict[str, str], secure: bool) -> list[str]:
        """Set-Cookie headers that delete every nudge cookie the browser sent."""
        return [set_cookie(name, "", max_age=0, secure=secure, http_only=name != DWELL_COOKIE)
                for name in OUR_COOKIES if name in cookies]

    def load_session(self, cookies: dict[str, str], now: int) -> Session:
        session = self.codec.load(cookies.get(COOKIE_NAME), now)
        dwell = parse_dwell_cookie(cookies.get(DWELL_COOKIE))
        if dwell:
            credit_dwell(session, dwell[0], dwell[1], now)
        return session

    def active_offer(self, cookies: dict[str, str], now: int) -> Redeemed | None:
        return self.offers.from_cookie(cookies.get(OFFER_COOKIE), now)

    def origin_headers(self, offer: Redeemed | None) -> dict[str, str]:
        """Headers nudge adds to the request it forwards to the origin."""
        return {OFFER_HEADER: offer.header_value()} if offer else {}

    def session_cookie(self, session: Session, secure: bool) -> str:
        return set_cookie(COOKIE_NAME, self.codec.encode(session), max_age=SESSION_MAX_AGE, secure=secure)

    # -- pages --------------------------------------------------------------------------------

    def plan_page(self, request: PageRequest, session: Session, offer: Redeemed | None,
                  profile: Profile | None, now: int, tracked: bool = True,
                  cookies: dict[str, str] | None = None, facts: ProductFacts | None = None,
                  injection: Injection = UNRESTRICTED, preview: Preview | None = None) -> PagePlan:
        """The page's nudges and cookies. An untracked visitor gets a throwaway session: rules on
        page, geo and device still apply, but nothing is stored and any old nudge cookie is erased.
        `injection` is what the page's Content-Security-Policy allows: when it blocks our script, or
        our styles both inline and as a stylesheet, the page is left as it is (the visit still counts).
        With a `preview`, that rule is shown at once and nothing about the browser is stored."""
        page = self.ruleset.classifier.classify(request.context.path)
        if page.type == "product" and page.product and not page.category and facts and facts.category:
            page = Page("product", facts.category, page.product)  # the category the page declared
        new_visit = session.is_new
        before = Before.of(session)
        pv = record_page_view(session, page, now, request.query, request.referrer, request.host)
        style = (render.style_tag(injection.style_nonce) if injection.inline_style
                 else render.stylesheet_link(self.style_href, injection.style_nonce) if injection.external_style
                 else "")
        if not injection.script:
            style = ""  # nothing of ours can work on this page: leave it as it is
        settings = self.ruleset.settings
        if preview is not None:
            attributes = self._attributes(session, page, profile, now, request.context)
            nudges = self._preview_nudges(preview)
            tracked = False
        else:
            attributes, nudges = self._decide(session, page, profile, now, request.context)
        body_start, body_end = [], []
        slots: dict[str, tuple[str, str]] = {}
        message = MESSAGES.get((cookies or {}).get(MESSAGE_COOKIE, ""))
        if message:
            body_start.append(render.notice(message))
        if offer and page.category == offer.category:
            body_start.append(render.offer_applied_banner(offer))
        if preview is not None:
            body_start.append(render.notice(f"Preview of {preview.rule} (variant {preview.variant}): "
                                            "shown at once, nothing recorded, no offer applied."))
        shown: list[Nudge] = []
        events = [Event("exposure", session.visitor_id, n.rule.id, n.variant, _group(n), page.type)
                  for n in nudges] if tracked else []
        for nudge in (n for n in nudges if not n.hidden and style):
            html = self._render(nudge, attributes, session, page, now, preview is not None)
            if html is None:
                continue  # a placeholder without a value, or nothing to recommend: not shown
            shown.append(nudge)
            if tracked:  # the edge's record of what this visitor was served: beacons may report only on it
                record_served(session, nudge.rule.id, _on_load(nudge))
            kind, action = nudge.rule.action.kind, nudge.action
            if kind == "modal":
                body_end.append(html)
            elif kind == "banner":
                body_start.append(html)
            else:
                slots[action.slot] = ("append" if kind == "badge" else "replace", html)
            if _on_load(nudge) and tracked:  # shown as the page loads: counted here, not by a beacon
                events.append(Event("impression", session.visitor_id, nudge.rule.id, nudge.variant, "treatment", page.type))
                if nudge.rule.counted:
                    session.shown[nudge.rule.key] = session.shown.get(nudge.rule.key, 0) + 1
        config = {
            "v": 1,
            "track": tracked,
            "cartEvents": True,  # always relayed: they count until the edge sees the cart (tracking.apply_beacon)
            "pv": pv,
            "beacon": BEACON_PATH,
            "page": {"type": page.type, "category": page.category, "product": page.product},
            "nudges": [_client_nudge(n) for n in shown if not n.rule.action.inline],
        }
        body_end.append(render.config_script(config))
        body_end.append(render.client_script_tag(self.client_src, injection.script_nonce))
        if not style:
            body_start, body_end = [], []
        return PagePlan(
            page=page,
            session=session,
            head=style,
            body_start="".join(body_start),
            body_end="".join(body_end),
            set_cookies=([] if preview is not None else [self.session_cookie(session, request.secure)] if tracked
                         else self.erase_cookies(cookies or {}, request.secure))
            + ([set_cookie(MESSAGE_COOKIE, "", max_age=0, secure=request.secure)]
               if tracked and MESSAGE_COOKIE in (cookies or {}) else []),
            profile_write=self.visit_profile(profile, session, now) if new_visit and tracked else None,
            nudges=nudges,
            learn=page.product if page.type == "product" and page.product and facts is None
            and self.catalog.get(page.product) is None else None,
            slots=slots,
            prices=offer if offer and style else None,
            page_category=page.category,
            currency=settings.currency,
            events=events,
            followups=self.followups(before, session, attributes, now, request.site) if tracked else FollowUpPlan(),
        )

    def followups(self, before: Before, session: Session, attributes: dict[str, Any], now: int, site: str,
                  purchased: bool = False) -> FollowUpPlan:
        """Follow-ups this request schedules or cancels (none unless a webhook is configured)."""
        if not self.followups_enabled or not self.ruleset.followups:
            return FollowUpPlan()
        return plan_followups(self.ruleset.followups, before, session, attributes, now, site, purchased)

    def off_page_followups(self, before: Before, session: Session, now: int, site: str,
                           purchased: bool = False) -> FollowUpPlan:
        """The same for a request that is not a page (a beacon, a cart change): attributes of the
        visit alone, as on a page nudge does not classify."""
        if not self.followups_enabled or not self.ruleset.followups:
            return FollowUpPlan()
        attributes = self._attributes(session, Page("other"), None, now, RequestContext())
        return self.followups(before, session, attributes, now, site, purchased)

    def followup_body(self, message: FollowUp, user_id: str, code: IssuedCode | None, now: int) -> dict[str, Any]:
        """The webhook's JSON body for a due follow-up."""
        rule = self.ruleset.followup(message.rule)
        limit = rule.action.limit if rule else 0
        catalog = self.ruleset.catalog
        body = webhook_body(message, user_id, cart_items(catalog, message), suggestions(catalog, message, limit), code, now)
        if rule is not None:
            body["message"] = {"title": rule.action.title, "body": rule.action.body}
        return body

    def visit_profile(self, stored: Profile | None, session: Session, now: int) -> Profile:
        """The profile after a visit's first page: one visit more, the interest of the visit that
        ended folded in. The edge merges into what KV holds, even when that arrives late."""
        return merged_profile(stored, now, new_visit=True, ended=session.ended)

    def _attributes(self, session: Session, page: Page, profile: Profile | None, now: int,
                    context: RequestContext) -> dict[str, Any]:
        return visitor_attributes(session, page, profile, now, context, self.ruleset.settings.free_shipping_over)

    def _decide(self, session: Session, page: Page, profile: Profile | None, now: int, context: RequestContext,
                why: dict[str, str] | None = None) -> tuple[dict[str, Any], list[Nudge]]:
        """The visitor's attributes and the nudges decided for this page (what pages and explain share)."""
        attributes = self._attributes(session, page, profile, now, context)
        return attributes, decide(self.ruleset, attributes, page, session, now, profile, context.path,
                                  self.spent_today(now), self.shadow, why)

    def _preview_nudges(self, preview: Preview) -> list[Nudge]:
        """The previewed rule on every page, revealed at once (page load), in the chosen variant."""
        rule = self.ruleset.rule(preview.rule)
        if rule is None:
            return []
        variant = preview.variant if 0 <= preview.variant < max(1, len(rule.variants)) else 0
        return [Nudge(dataclasses.replace(rule, trigger="page_load", trigger_value=0), 0, variant)]

    def preview_of(self, cookies: dict[str, str], now: int) -> Preview | None:
        return self.previews.verify(cookies.get(PREVIEW_COOKIE), now)

    def start_preview(self, query: str, now: int, secure: bool) -> Reply:
        """GET /_nudge/preview?t=TOKEN[&path=/x]: this browser previews the rule until the link
        expires; `?end=1` stops previewing."""
        params = parse_qs(query)
        if params.get("end"):
            return Reply(303, "", "text/plain", [("Location", "/"), ("Cache-Control", "no-store"),
                                                 ("Set-Cookie", set_cookie(PREVIEW_COOKIE, "", max_age=0, secure=secure))])
        token = (params.get("t") or [""])[0]
        preview = self.previews.verify(token, now)
        if preview is None or self.ruleset.rule(preview.rule) is None:
            return _json(403, {"error": "this preview link is invalid or has expired: mint a new one with `nudge preview`"},
                         [("Cache-Control", "no-store")])
        path = (params.get("path") or ["/"])[0]
        location = path if same_site_path(path) else "/"
        return Reply(303, "", "text/plain", [
            ("Location", location), ("Cache-Control", "no-store"),
            ("Set-Cookie", set_cookie(PREVIEW_COOKIE, token, max_age=preview.expires - now, secure=secure)),
        ])

    def _render(self, nudge: Nudge, attributes: dict[str, object], session: Session, page: Page,
                now: int, preview: bool = False) -> str | None:
        action, currency = nudge.action, self.ruleset.settings.currency
        try:
            texts = action.texts(attributes, currency)
        except MissingValue:
            return None
        href = self._cta_href(nudge, session, now, preview)
        if action.kind == "modal":
            return render.modal(nudge, href or "#", texts)
        if action.kind == "banner":
            return render.banner(nudge, href, texts)
        if action.kind == "slot":
            return render.slot_content(nudge, href, texts)
        if action.kind == "badge":
            return render.badge(nudge, texts)
        products = recommend(self.ruleset.catalog, session, page, action.sources, action.limit)
        return render.recommendations(nudge, products, currency, texts) if products else None

    def _cta_href(self, nudge: Nudge, session: Session, now: int, preview: bool = False) -> str | None:
        """Where the button goes. A preview's offer button goes straight to the offer's page: a redeem
        link would be bound to the preview's throwaway visitor (refused) and must not count anyway."""
        rule = nudge.rule
        if rule.offer and preview:
            return rule.offer.redirect
        if rule.offer:
            token = self.offers.mint(rule, session.visitor_id, now)
            return f"{REDEEM_PATH}?t={quote(token, safe='')}"
        return rule.action.url or None

    # -- endpoints ----------------------------------------------------------------------------

    def read_beacon(self, method: str, body: bytes, content_type: str | None) -> Beacon | Reply:
        """POST /_nudge/beacon, first half: the validated beacon, or the error reply (405/415/400 with
        a reason; the session is then left untouched)."""
        if method != "POST":
            return _json(405, {"error": "use POST"}, [("Allow", "POST")])
        refusal = beacon_media_refusal(content_type)  # never an HTML form's encodings (CSRF)
        if refusal is not None:
            return Reply(415, refusal + "\n", "text/plain; charset=utf-8", [("Accept-Post", BEACON_MEDIA_TYPE)])
        try:
            beacon = parse_beacon(body, content_type)
        except BeaconError as exc:
            return _json(400, {"error": str(exc)})
        for event in beacon.events:
            if event.rule is not None and self.ruleset.rule(event.rule) is None:
                return _json(400, {"error": f"unknown rule {event.rule!r}"})
        return beacon

    def apply_beacon(self, beacon: Beacon, session: Session, now: int, secure: bool,
                     site: str = "") -> tuple[Reply, KeyEvent]:
        """Second half: applies it and answers 204 with the session cookie, plus what the beacon
        changes (the caller merges it into the KV profile) and the follow-ups it changes. Only the
        events `tracking.apply_beacon` admits count; a browser's purchase never moves orders or
        revenue (it is measured as an unverified conversion)."""
        before = Before.of(session)
        counted = apply_beacon(session, beacon, now)
        cookie = self.session_cookie(session, secure)
        event = KeyEvent(stopped=self._stopped_by(counted, session, False),
                         events=self._beacon_events(counted, session.visitor_id),
                         followups=self.off_page_followups(before, session, now, site))
        return Reply(204, "", headers=[("Set-Cookie", cookie)]), event

    def order_seen(self, order: ShopOrder, session: Session, now: int, site: str = "") -> KeyEvent | None:
        """An order the shop's origin confirmed (X-Nudge-Order): counted into the session, the
        profile (the returned KeyEvent) and the measurement as a conversion, once per order id in
        this visit (the edge also guards across visits in KV); None for a repeat."""
        if not first_time(session, "order:" + order.id):
            return None
        before, revenue = Before.of(session), session.revenue
        record_order(session, order.value, now)
        return KeyEvent(1, session.revenue - revenue, stopped=self._stopped_by((), session, True),
                        events=[Event("conversion", session.visitor_id, revenue=order.value)],
                        followups=self.off_page_followups(before, session, now, site, purchased=True))

    def _beacon_events(self, counted: list[BeaconEvent], visitor: str) -> list[Event]:
        """Measurement events of a client report's admitted events: reveals, clicks, dismisses, and
        purchases the browser claims (kind "conversion_unverified": the report leaves them out)."""
        kinds = {"nudge_shown": "impression", "nudge_clicked": "click", "nudge_dismissed": "dismiss"}
        out = []
        for item in counted:
            rule = self.ruleset.rule(item.rule) if item.rule else None
            if item.type in kinds and rule is not None:
                out.append(rule_event(kinds[item.type], rule, visitor))
            elif item.type == "purchase":
                out.append(Event("conversion_unverified", visitor, revenue=item.value))
        return out

    def _stopped_by(self, counted: Iterable[BeaconEvent], session: Session, converted: bool) -> tuple[int, ...]:
        """Rules to stop for good: clicked ones with stop_after "click", and on a confirmed order
        the ones shown this visit with stop_after "conversion"."""
        stopped = []
        for event in counted:
            rule = self.ruleset.rule(event.rule) if event.type == "nudge_clicked" and event.rule else None
            if rule is not None and rule.caps.stop_after == "click":
                stopped.append(key32(rule.id))
        if converted:
            stopped += [key32(r.id) for r in self.ruleset.rules
                        if r.caps.stop_after == "conversion" and key32(r.id) in session.shown]
        return tuple(stopped)

    def beacon(self, method: str, body: bytes, content_type: str | None,
               session: Session, now: int, secure: bool, site: str = "") -> tuple[Reply, KeyEvent]:
        """Both halves, for callers with nothing to do in between."""
        beacon = self.read_beacon(method, body, content_type)
        if isinstance(beacon, Reply):
            return beacon, KeyEvent()
        return self.apply_beacon(beacon, session, now, secure, site)

    def identity_from_token(self, token: str, now: int) -> str | None:
        """The customer id a shop-signed identity token vouches for (None without NUDGE_SHOP_SECRET,
        or for a forged or expired token)."""
        return verify_shop_token(self.shop_secret, token, now)

    def order_key(self, order_id: str) -> str:
        """The KV key marking an order id as counted (purchases.order_key under the first secret)."""
        return order_key(self._identity_secret, order_id)

    def identity_of(self, user_id: str) -> str | None:
        """The keyed hash a customer id is known by (see identity.py); None for unusable ids."""
        return identity_hash(self._identity_secret, user_id)

    def offer_rule(self, query: str, session: Session, now: int) -> Rule | None:
        """The rule whose offer a redeem link's token names, when the token is good for this visitor."""
        token = (parse_qs(query).get("t") or [""])[0]
        try:
            rule = self.ruleset.rule(self.offers.verify(token, session.visitor_id, now))
        except BadData:
            return None
        return rule if rule is not None and rule.offer is not None else None

    def redeem_claim(self, query: str, session: Session, now: int,
                     active: Redeemed | None = None) -> LedgerClaim | None:
        """What the edge asks the redemption ledger before `redeem` (None: the answer needs no
        ledger - a bad link, a second click, a rule this session already closed)."""
        rule = self.offer_rule(query, session, now)
        if rule is None or rule.offer is None or (active is not None and active.rule_id == rule.id):
            return None
        if is_closed(session, rule.id):
            return None
        return LedgerClaim(rule.id, visitor_key(self.ledger_secret, session.visitor_id), rule.offer.max_per_day or 0,
                           now + KEEP_VISITOR)

    def redeem(self, query: str, session: Session, now: int, secure: bool,
               active: Redeemed | None = None, verdict: str = REDEEMED) -> tuple[Reply, KeyEvent]:
        """GET /_nudge/redeem?t=TOKEN: applies the offer once, then redirects to its same-site page.
        `verdict` is the redemption ledger's answer to `redeem_claim` (ledger.py). A bad, expired or
        already used link, one whose daily budget is spent, or one the ledger could not record
        lands on the shop with a polite message instead, and no offer."""
        rule = self.offer_rule(query, session, now)
        if rule is None or rule.offer is None:
            return self._polite("/", "offer-expired", secure), KeyEvent()
        offer = rule.offer
        if active is not None and active.rule_id == rule.id:  # a second click: same offer, once
            return Reply(303, "", "text/plain", [("Location", offer.redirect), ("Cache-Control", "no-store")]), KeyEvent()
        if is_closed(session, rule.id):  # redeemed earlier and since expired or removed: single use
            return self._polite(offer.redirect, "offer-used", secure), KeyEvent()
        if verdict == ENDED:
            self.spent[rule.id] = now // 86_400  # stop showing it today
        if verdict != REDEEMED:
            return self._polite(offer.redirect, _REFUSED.get(verdict, "offer-unavailable"), secure), KeyEvent()
        redeemed = Redeemed(rule.id, offer.code, offer.percent, offer.category, offer_expiry(offer, now), offer.amount)
        close_rule(session, rule.id)
        session.last_seen = now
        reply = Reply(
            303,
            "",
            content_type="text/plain",
            headers=[
                ("Location", offer.redirect),
                ("Cache-Control", "no-store"),
                ("Set-Cookie", set_cookie(OFFER_COOKIE, self.offers.cookie(redeemed),
                                          max_age=redeemed.expires - now, secure=secure)),
                ("Set-Cookie", self.session_cookie(session, secure)),
            ],
        )
        stop = (key32(rule.id),) if rule.caps.stop_after == "click" else ()
        return reply, KeyEvent(redeemed=1, stopped=stop,
                               events=[rule_event("click", rule, session.visitor_id)])

    def code_claim(self, issued: IssuedCode | None, now: int, active: Redeemed | None = None) -> LedgerClaim | None:
        """What the edge asks the redemption ledger before `redeem_code` (None: no need). Codes
        are single use but outside the rule's daily budget: the shop promised them off-site."""
        if issued is None or issued.expires <= now or issued.used or (active is not None and active.code == issued.code):
            return None
        return LedgerClaim(issued.rule, code_ledger_key(issued.code), 0, issued.expires)

    def redeem_code(self, issued: IssuedCode | None, session: Session, now: int, secure: bool,
                    active: Redeemed | None = None, verdict: str = REDEEMED) -> tuple[Reply, KeyEvent]:
        """GET /_nudge/redeem?code=CODE: a follow-up's single-use code (its details looked up in KV
        by the edge), good in any browser once - `verdict` is the redemption ledger's answer to
        `code_claim`; then as a button's offer."""
        if issued is None or issued.expires <= now:
            return self._polite("/", "offer-expired", secure), KeyEvent()
        if active is not None and active.code == issued.code:  # the same browser clicking again
            return Reply(303, "", "text/plain", [("Location", issued.redirect), ("Cache-Control", "no-store")]), KeyEvent()
        if issued.used:  # marked in KV by an older version
            return self._polite(issued.redirect, "offer-used", secure), KeyEvent()
        if verdict != REDEEMED:
            return self._polite(issued.redirect, _REFUSED.get(verdict, "offer-unavailable"), secure), KeyEvent()
        redeemed = Redeemed(issued.rule, issued.code, issued.percent, issued.category, issued.expires, issued.amount)
        session.last_seen = now
        reply = Reply(303, "", "text/plain", [
            ("Location", issued.redirect),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", set_cookie(OFFER_COOKIE, self.offers.cookie(redeemed), max_age=issued.expires - now,
                                      secure=secure)),
            ("Set-Cookie", self.session_cookie(session, secure)),
        ])
        click = Event("click", session.visitor_id, issued.rule, 0, "treatment")
        return reply, KeyEvent(redeemed=1, events=[click], code=dataclasses.replace(issued, used=now))

    def _polite(self, location: str, message: str, secure: bool) -> Reply:
        """A redirect to the shop carrying a one-time message the next page shows (MESSAGES)."""
        return Reply(303, "", "text/plain", [
            ("Location", location),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", set_cookie(MESSAGE_COOKIE, message, max_age=120, secure=secure)),
        ])

    def forget(self, method: str, cookies: dict[str, str], visitor: str | None, profile_erased: bool,
               secure: bool, identity_erased: bool = False) -> Reply:
        """POST /_nudge/forget: the answer after the edge erased the KV profile; erases the cookies."""
        if method != "POST":
            return _json(405, {"error": "use POST (a link must not erase data)"}, [("Allow", "POST")])
        erased = {
            "cookies": [name for name in OUR_COOKIES if name in cookies],
            "visitor": visitor,
            "profile": profile_erased,
            "identity_link": identity_erased,
        }
        headers = [("Set-Cookie", c) for c in self.erase_cookies(cookies, secure)]
        return _json(200, {"erased": erased}, headers + [("Cache-Control", "no-store")])

    def explain(self, query: str, session: Session, profile: Profile | None, now: int, status: str,
                context: RequestContext) -> Reply:
        """GET /_nudge/explain?token=T&path=/some/page[&format=json]: for this browser, its
        attributes and every rule's outcome on that page, with the reason. Reads, never writes:
        the page view is simulated on a copy of the session."""
        params = parse_qs(query)
        token = (params.get("token") or [""])[0]
        if not self._explain_token:
            return _json(404, {"error": "explain is off: set NUDGE_EXPLAIN_TOKEN"})
        if not hmac.compare_digest(token.encode(), self._explain_token.encode()):
            return _json(403, {"error": "wrong or missing token"}, [("Cache-Control", "no-store")])
        path = (params.get("path") or ["/"])[0]
        if not same_site_path(path):
            return _json(400, {"error": "path must be a same-site path like /collections/sneakers"})
        # Read as a page request is: the path is classified, the query only feeds searches and UTM.
        page_path, _, page_query = path.partition("?")
        trial = copy.deepcopy(session)
        page = self.ruleset.classifier.classify(page_path)
        record_page_view(trial, page, now, page_query)
        why: dict[str, str] = {}
        attributes, decided = self._decide(trial, page, profile, now, dataclasses.replace(context, path=page_path),
                                           why)
        items = verdicts(self.ruleset, page.type, decided, why, attributes)
        headers = [("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex")]
        cart = cart_explained(session, len(self.cart.routes) if self.cart else 0,
                              self.cart.truth.url if self.cart and self.cart.truth else None)
        if (params.get("format") or [""])[0] == "json":
            return Reply(200, explain_json(status, path, attributes, items, cart), headers=headers)
        return Reply(200, explain_html(status, path, attributes, items, cart), "text/html; charset=utf-8", headers)

    def stylesheet(self) -> Reply:
        return Reply(200, render.CSS, content_type="text/css; charset=utf-8",
                     headers=[("Cache-Control", "public, max-age=31536000, immutable")])

    def client(self) -> Reply:
        return Reply(200, self.client_js, content_type="text/javascript; charset=utf-8",
                     headers=[("Cache-Control", "public, max-age=31536000, immutable")])

    def health(self) -> Reply:
        return _json(200, {"ok": True, "rules": len(self.ruleset.rules), "rules_version": self.rules_version},
                     [("Cache-Control", "no-store")])
