"""nudge's core in plain Python: one rule set, the secrets' codecs, and the decisions that need both.

`Engine` is configuration: the rule set, the cookie and token codecs, the client script's address
and the Worker's settings, fixed once built. An isolate builds one from its vars and a rule set, and
a new one when newly published rules arrive (`with_ruleset`: no parsing, a few hashes), so a
request keeps the rules it began with. What the isolate learns while it serves (today's spent
budgets, the product facts read from pages) is no configuration: it outlives the Engine in an
`IsolateMemory` (isolate_memory.py), which the runtime hands to the calls that read or change it.
The work itself lives in its rooms:

    page_plan.py         an HTML page: classify -> decide -> render -> place -> cookies
    visit_reports.py     POST /_nudge/beacon and the shop's confirmed orders
    redemption.py        GET /_nudge/redeem: offer links and follow-up codes
    endpoint_replies.py  explain, preview, forget, health and the static assets

The methods below that only hand over to those rooms keep the names the runtime calls. Nothing here
touches the Workers runtime (`nudge.runtime` does the I/O), so all of it is unit-tested in CPython.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from nudge import endpoint_replies, redemption, visit_reports
from nudge.delivery import render
from nudge.delivery.csp import UNRESTRICTED, Injection
from nudge.followups.messages import FollowUp, IssuedCode
from nudge.followups.planning import Before, FollowUpPlan, plan_followups
from nudge.followups.webhook import cart_items, suggestions, webhook_body
from nudge.isolate_memory import IsolateMemory
from nudge.kv_keys import order_key
from nudge.ledger import REDEEMED, LedgerClaim
from nudge.offer_apply import apply_location
from nudge.offers import OFFER_COOKIE, OFFER_HEADER, OfferTokens, Redeemed
from nudge.page_plan import PagePlan, PageRequest, plan_page
from nudge.reply import (
    BEACON_PATH,
    CLIENT_PATH,
    EXPLAIN_PATH,
    FORGET_PATH,
    HEALTH_PATH,
    PREFIX,
    PREVIEW_PATH,
    REDEEM_PATH,
    STYLE_PATH,
    Reply,
)
from nudge.rules.decide import Nudge
from nudge.rules.decide import decide as decide_rules
from nudge.rules.model import RuleSet
from nudge.rules.preview import PREVIEW_COOKIE, Preview, PreviewTokens
from nudge.signing import Signer
from nudge.visit_reports import KeyEvent
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.beacon import Beacon
from nudge.visitor.cookies import OUR_COOKIES, set_cookie
from nudge.visitor.identity import identity_hash, verify_shop_token
from nudge.visitor.learned_catalog import LearnedCatalog
from nudge.visitor.pages import Page
from nudge.visitor.privacy import ConsentPolicy, is_automated, may_track
from nudge.visitor.product_facts import ProductFacts
from nudge.visitor.profile import Profile, merged_profile
from nudge.visitor.purchases import ShopOrder
from nudge.visitor.session import COOKIE_NAME, Session, SessionCodec
from nudge.visitor.tracking import categorize_late, credit_dwell, parse_dwell_cookie, uncategorized_products

__all__ = [  # what the runtime and the tests import from here (some defined in the rooms above)
    "BEACON_PATH", "CLIENT_PATH", "DWELL_COOKIE", "EXPLAIN_PATH", "FORGET_PATH", "HEALTH_PATH", "PREFIX",
    "PREVIEW_PATH", "REDEEM_PATH", "SESSION_MAX_AGE", "STYLE_PATH", "Engine", "KeyEvent", "PagePlan",
    "PageRequest", "Reply",
]

DWELL_COOKIE = "nudge_dw"
SESSION_MAX_AGE = 400 * 24 * 3600


class Engine:
    """Everything nudge decides, for one rule set and one set of secrets; fixed once built (newly
    published rules make another: `with_ruleset`)."""

    def __init__(self, ruleset: RuleSet, secrets: list[bytes], client_js: str,
                 consent: ConsentPolicy | None = None, edge_cart: bool = True,
                 rules_version: str = "bundled", shadow: bool = False, explain_token: str = "", *,
                 followups_enabled: bool = False, shop_secret: bytes | None = None) -> None:
        if not secrets:  # never a default: without a secret there is nothing to sign with
            raise ValueError("at least one secret is required (NUDGE_SECRET)")
        self.ruleset = ruleset
        self.rules_version = rules_version
        self._edge_cart = edge_cart
        self.cart = ruleset.cart if edge_cart else None  # cart endpoints watched at the edge
        self._secrets = list(secrets)  # for with_ruleset
        self.consent = consent or ConsentPolicy("none")
        self._identity_secret = secrets[0]
        self.shop_secret = shop_secret  # NUDGE_SHOP_SECRET: verifies the shop's identity tokens
        self.codec = SessionCodec(Signer(secrets, "session"))
        self.offers = OfferTokens(Signer(secrets, "offer-token"), Signer(secrets, "offer-cookie"))
        self.previews = PreviewTokens(Signer(secrets, "preview"))
        self.client_js = client_js
        digest = hashlib.sha256(client_js.encode("utf-8")).hexdigest()[:12]
        self.client_src = f"{CLIENT_PATH}?v={digest}"
        self.style_href = f"{STYLE_PATH}?v={hashlib.sha256(render.CSS.encode('utf-8')).hexdigest()[:12]}"
        self.shadow = shadow  # every rule in shadow mode (NUDGE_SHADOW=on)
        self.explain_token = explain_token  # NUDGE_EXPLAIN_TOKEN; empty: /_nudge/explain is off
        self.followups_enabled = followups_enabled  # a webhook, its secret and the queue are configured
        self.code_secret = hmac.new(secrets[0], b"nudge/followup-codes", hashlib.sha256).digest()
        self.ledger_secret = hmac.new(secrets[0], b"nudge/ledger-keys", hashlib.sha256).digest()

    # -- the rule set ---------------------------------------------------------------------------

    def with_ruleset(self, ruleset: RuleSet, version: str) -> Engine:
        """This configuration with another rule set (a newly published one): a new Engine, so a
        request that began with the old rules finishes with them."""
        return Engine(ruleset, self._secrets, self.client_js, self.consent, self._edge_cart, version, self.shadow,
                      self.explain_token, followups_enabled=self.followups_enabled, shop_secret=self.shop_secret)

    # -- reading the visitor ------------------------------------------------------------------

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

    def session_cookie(self, session: Session, secure: bool) -> str:
        return set_cookie(COOKIE_NAME, self.codec.encode(session), max_age=SESSION_MAX_AGE, secure=secure)

    def active_offer(self, cookies: dict[str, str], now: int) -> Redeemed | None:
        return self.offers.from_cookie(cookies.get(OFFER_COOKIE), now)

    def origin_headers(self, offer: Redeemed | None) -> dict[str, str]:
        """Headers nudge adds to the request it forwards to the origin: the offer only to a shop that
        reads it (`apply = "header"`; offer_apply.py says why not otherwise)."""
        return {OFFER_HEADER: offer.header_value()} if offer and self.offer_apply(offer.rule_id) == "header" else {}

    def offer_apply(self, rule_id: str) -> str:
        """How the offer of `rule_id` reaches the cart: its own `apply`, else the site's (also for a
        rule removed since the visitor redeemed it)."""
        rule = self.ruleset.rule(rule_id) or self.ruleset.followup(rule_id)
        own = rule.offer.apply if rule is not None and rule.offer is not None else None
        return own or self.ruleset.settings.offer_apply

    def offer_landing(self, rule_id: str, code: str, redirect: str) -> str:
        """Where a redeemed offer sends the shopper: its page, or through the platform's apply-by-URL."""
        template = self.ruleset.settings.offer_apply_url
        return apply_location(template, code, redirect) if template and self.offer_apply(rule_id) == "url" else redirect

    def preview_of(self, cookies: dict[str, str], now: int) -> Preview | None:
        return self.previews.verify(cookies.get(PREVIEW_COOKIE), now)

    def identity_from_token(self, token: str, now: int) -> str | None:
        """The customer id a shop-signed identity token vouches for (None without NUDGE_SHOP_SECRET,
        or for a forged or expired token)."""
        return verify_shop_token(self.shop_secret, token, now)

    def identity_of(self, user_id: str) -> str | None:
        """The keyed hash a customer id is known by (see identity.py); None for unusable ids."""
        return identity_hash(self._identity_secret, user_id)

    def order_key(self, order_id: str) -> str:
        """The KV key marking an order id as counted (purchases.order_key under the first secret)."""
        return order_key(self._identity_secret, order_id)

    # -- decisions ----------------------------------------------------------------------------

    def attributes(self, session: Session, page: Page, profile: Profile | None, now: int,
                   context: RequestContext) -> dict[str, Any]:
        return visitor_attributes(session, page, profile, now, context, self.ruleset.settings.free_shipping_over)

    def decide(self, session: Session, page: Page, profile: Profile | None, now: int, context: RequestContext,
               spent: frozenset[str], why: dict[str, str] | None = None) -> tuple[dict[str, Any], list[Nudge]]:
        """The visitor's attributes and the nudges decided for this page (what pages and explain
        share). `spent`: the rules whose discount budget ran out today (SpentBudgets.spent_today)."""
        attributes = self.attributes(session, page, profile, now, context)
        return attributes, decide_rules(self.ruleset, attributes, page, session, now, profile, context.path,
                                        spent, self.shadow, why)

    def product_category(self, learned: LearnedCatalog, product_id: str) -> str | None:
        """A product's category when its URL has none: the shop's feed (rules/catalog.toml) first,
        then what this isolate learned from the product's own page."""
        listed = self.ruleset.catalog.get(product_id)
        if listed is not None:
            return listed.category
        facts = learned.get(product_id)
        return facts.category if facts is not None else None

    def item_price(self, learned: LearnedCatalog, sku: str) -> float | None:
        """What a cart line of `sku` is worth: the price its product page showed in this isolate,
        else the feed's price for that sku (a shop whose pages carry no price facts: Django Oscar)."""
        seen = learned.price_of(sku)
        if seen is not None:
            return seen
        listed = self.ruleset.catalog.with_sku(sku)
        return listed.price if listed is not None else None

    def categorize_viewed(self, learned: LearnedCatalog, session: Session, now: int) -> None:
        """Products this visit viewed before their category was known (learned from the page as it
        streamed) count for it from now on, that first view and its dwell included."""
        for product_id in uncategorized_products(session):
            category = self.product_category(learned, product_id)
            if category:
                categorize_late(session, product_id, category, now)

    def visit_profile(self, stored: Profile | None, session: Session, now: int) -> Profile:
        """The profile after a visit's first page: one visit more, the interest of the visit that
        ended folded in. The edge merges into what KV holds, even when that arrives late."""
        return merged_profile(stored, now, new_visit=True, ended=session.ended)

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
        attributes = self.attributes(session, Page("other"), None, now, RequestContext())
        return self.followups(before, session, attributes, now, site, purchased)

    def followup_body(self, message: FollowUp, user_id: str, code: IssuedCode | None, now: int) -> dict[str, Any]:
        """The webhook's JSON body for a due follow-up."""
        rule = self.ruleset.followup(message.rule)
        limit = rule.action.limit if rule else 0
        catalog = self.ruleset.catalog
        body = webhook_body(message, user_id, cart_items(catalog, message), suggestions(catalog, message, limit),
                            code, now)
        if rule is not None:
            body["message"] = {"title": rule.action.title, "body": rule.action.body}
        return body

    # -- handed to the rooms (the names the runtime calls; `memory`: the isolate's) ------------

    def plan_page(self, memory: IsolateMemory, request: PageRequest, session: Session, offer: Redeemed | None,
                  profile: Profile | None, now: int, tracked: bool = True,
                  cookies: dict[str, str] | None = None, facts: ProductFacts | None = None,
                  injection: Injection = UNRESTRICTED, preview: Preview | None = None,
                  offer_confirmed: bool = False) -> PagePlan:
        """See page_plan.plan_page."""
        return plan_page(self, memory, request, session, offer, profile, now, tracked, cookies, facts, injection,
                         preview, offer_confirmed)

    def read_beacon(self, method: str, body: bytes, content_type: str | None) -> Beacon | Reply:
        return visit_reports.read_beacon(self.ruleset, method, body, content_type)

    def apply_beacon(self, memory: IsolateMemory, beacon: Beacon, session: Session, now: int, secure: bool,
                     site: str = "") -> tuple[Reply, KeyEvent]:
        return visit_reports.apply_beacon(self, memory, beacon, session, now, secure, site)

    def order_seen(self, order: ShopOrder, session: Session, now: int, site: str = "") -> KeyEvent | None:
        return visit_reports.order_seen(self, order, session, now, site)

    def redeem_claim(self, query: str, session: Session, now: int,
                     active: Redeemed | None = None) -> LedgerClaim | None:
        return redemption.redeem_claim(self, query, session, now, active)

    def redeem(self, memory: IsolateMemory, query: str, session: Session, now: int, secure: bool,
               active: Redeemed | None = None, verdict: str = REDEEMED) -> tuple[Reply, KeyEvent]:
        return redemption.redeem(self, memory, query, session, now, secure, active, verdict)

    def code_claim(self, issued: IssuedCode | None, now: int, active: Redeemed | None = None) -> LedgerClaim | None:
        return redemption.code_claim(issued, now, active)

    def redeem_code(self, issued: IssuedCode | None, session: Session, now: int, secure: bool,
                    active: Redeemed | None = None, verdict: str = REDEEMED) -> tuple[Reply, KeyEvent]:
        return redemption.redeem_code(self, issued, session, now, secure, active, verdict)

    def forget(self, method: str, cookies: dict[str, str], visitor: str | None, profile_erased: bool,
               secure: bool, identity_erased: bool = False) -> Reply:
        return endpoint_replies.forget(self, method, cookies, visitor, profile_erased, secure, identity_erased)

    def explain(self, memory: IsolateMemory, query: str, session: Session, profile: Profile | None, now: int,
                status: str, context: RequestContext) -> Reply:
        return endpoint_replies.explain(self, memory, query, session, profile, now, status, context)

    def start_preview(self, query: str, now: int, secure: bool) -> Reply:
        return endpoint_replies.start_preview(self, query, now, secure)

    def health(self) -> Reply:
        return endpoint_replies.health(self)

    def stylesheet(self) -> Reply:
        return endpoint_replies.stylesheet()

    def client(self) -> Reply:
        return endpoint_replies.client_script(self.client_js)
