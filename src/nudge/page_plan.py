"""What nudge does to one HTML page, in named steps:

    classify -> decide -> render -> place -> cookies

`plan_page` reads top to bottom as that pipeline; each step is a small function a test can call on
its own. The engine holds what the steps read (rules, codecs), the isolate's memory what it learned
(spent budgets, product facts); the runtime carries the resulting `PagePlan` into the HTMLRewriter.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nudge.budgets import SpentBudgets
from nudge.delivery import render
from nudge.delivery.csp import UNRESTRICTED, Injection
from nudge.delivery.price_selectors import PriceSelector
from nudge.events import Event
from nudge.followups.planning import Before, FollowUpPlan
from nudge.isolate_memory import IsolateMemory
from nudge.offer_apply import OfferShown, offer_shown
from nudge.offers import Redeemed
from nudge.redemption import MESSAGE_COOKIE, MESSAGES
from nudge.reply import BEACON_PATH, REDEEM_PATH
from nudge.rules.decide import Nudge
from nudge.rules.model import RuleSet
from nudge.rules.preview import Preview
from nudge.rules.recommend import recommend
from nudge.rules.templates import MissingValue
from nudge.visitor.attributes import RequestContext
from nudge.visitor.cookies import set_cookie
from nudge.visitor.learned_catalog import LearnedCatalog
from nudge.visitor.pages import Page
from nudge.visitor.product_facts import ProductFacts
from nudge.visitor.profile import Profile
from nudge.visitor.session import Session
from nudge.visitor.tracking import record_page_view, record_served

if TYPE_CHECKING:
    from nudge.engine import Engine


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
    price_selectors: tuple[PriceSelector, ...] = ()  # [site] prices: used only when `prices` is set
    page_category: str | None = None
    currency: str = "USD"
    events: list[Event] = field(default_factory=list)  # exposures and on-load impressions
    followups: FollowUpPlan = field(default_factory=FollowUpPlan)

    def log_line(self, status: str, rules_version: str, own_ms: float, handlers: int, ended: bool,
                 profile: str = "none") -> str:
        """One structured JSON line per page: the decision summary, no personal data (no path,
        query, visitor id or attribute values). `own_ms`: nudge's own time on the page, handler
        calls included; `ended`: False when the body stopped streaming before its end; `profile`:
        where the visitor's profile came from ("kv", "held" by the isolate, "late": KV missed its
        budget, "none": not read)."""
        return json.dumps({
            "nudge": "page", "page": self.page.type, "visitor": status, "rules": rules_version, "ms": own_ms,
            "handlers": handlers, "ended": ended, "profile": profile,
            "decided": [{"rule": n.rule.id, "variant": n.variant, "group": group(n)} for n in self.nudges],
            "slots": sorted(self.slots), "prices": self.prices is not None,
        }, separators=(",", ":"))


@dataclass
class Placement:
    """Where rendered nudges go: banners open the body, modals close it, inline content fills slots."""

    body_start: list[str] = field(default_factory=list)
    body_end: list[str] = field(default_factory=list)
    slots: dict[str, tuple[str, str]] = field(default_factory=dict)


def plan_page(engine: Engine, memory: IsolateMemory, request: PageRequest, session: Session, offer: Redeemed | None,
              profile: Profile | None, now: int, tracked: bool = True,
              cookies: dict[str, str] | None = None, facts: ProductFacts | None = None,
              injection: Injection = UNRESTRICTED, preview: Preview | None = None,
              offer_confirmed: bool = False) -> PagePlan:
    """The page's nudges and cookies. An untracked visitor gets a throwaway session: rules on
    page, geo and device still apply, but nothing is stored and any old nudge cookie is erased.
    `injection` is what the page's Content-Security-Policy allows: when it blocks our script, or
    our styles both inline and as a stylesheet, the page is left as it is (the visit still counts).
    With a `preview`, that rule is shown at once and nothing about the browser is stored.
    `offer_confirmed`: the origin answered with X-Nudge-Offer-Applied (it priced the page itself)."""
    cookies = cookies or {}
    engine.categorize_viewed(memory.learned, session, now)  # earlier views of products whose category is known now
    page = classify(engine.ruleset, request.context.path, facts)
    new_visit, before = session.is_new, Before.of(session)
    pv = record_page_view(session, page, now, request.query, request.referrer, request.host)
    tracked = tracked and preview is None  # a preview records nothing
    attributes, nudges = decide_nudges(engine, memory.budgets, request, session, page, profile, now, preview)
    style = page_style(engine, injection)
    rendered = render_nudges(engine, nudges, attributes, session, page, now, preview is not None) if style else []
    events = count_served(session, page, nudges, rendered, tracked)
    shown_offer = offer_shown(engine.offer_apply(offer.rule_id), offer_confirmed,
                              engine.ruleset.settings.offer_header == "honoured") if offer else None
    placed = place(rendered, notices(cookies, offer if shown_offer else None, shown_offer, page, preview))
    config = client_config(engine, page, pv, [n for n, _ in rendered], tracked, session.edge_cart_seen)
    placed.body_end += [render.config_script(config),
                        render.client_script_tag(engine.client_src, injection.script_nonce)]
    if not style:
        placed = Placement()  # nothing of ours can work on this page: leave it as it is
    return PagePlan(
        page=page, session=session, head=style,
        body_start="".join(placed.body_start), body_end="".join(placed.body_end),
        set_cookies=page_cookies(engine, request.secure, session, cookies, tracked, preview),
        profile_write=engine.visit_profile(profile, session, now) if new_visit and tracked else None,
        nudges=nudges,
        learn=product_to_learn(memory.learned, page, facts),
        slots=placed.slots,
        prices=offer if offer and style and shown_offer and shown_offer.rewrite_prices else None,
        price_selectors=engine.ruleset.settings.prices,
        page_category=page.category,
        currency=engine.ruleset.settings.currency,
        events=events,
        followups=engine.followups(before, session, attributes, now, request.site) if tracked else FollowUpPlan(),
    )


# -- classify -------------------------------------------------------------------------------------


def classify(ruleset: RuleSet, path: str, facts: ProductFacts | None) -> Page:
    """The page type of a path; a product page whose path names no category takes the one the
    shop's feed lists (rules/catalog.toml), else the one its own markup declared."""
    page = ruleset.classifier.classify(path)
    if page.type == "product" and page.product and not page.category:
        listed = ruleset.catalog.get(page.product)
        category = listed.category if listed is not None else facts.category if facts else None
        if category:
            return Page("product", category, page.product)
    return page


def product_to_learn(learned: LearnedCatalog, page: Page, facts: ProductFacts | None) -> str | None:
    """A product page whose facts nudge knows from nowhere yet: read them from this page."""
    if page.type == "product" and page.product and facts is None and learned.get(page.product) is None:
        return page.product
    return None


# -- decide ---------------------------------------------------------------------------------------


def decide_nudges(engine: Engine, budgets: SpentBudgets, request: PageRequest, session: Session, page: Page,
                  profile: Profile | None, now: int, preview: Preview | None) -> tuple[dict[str, Any], list[Nudge]]:
    """The visitor's attributes and the page's nudges: the rules' decision (no offer whose budget
    ran out today), or the previewed rule."""
    if preview is None:
        return engine.decide(session, page, profile, now, request.context, budgets.spent_today(now))
    return engine.attributes(session, page, profile, now, request.context), preview_nudges(engine.ruleset, preview)


def preview_nudges(ruleset: RuleSet, preview: Preview) -> list[Nudge]:
    """The previewed rule on every page, revealed at once (page load), in the chosen variant."""
    rule = ruleset.rule(preview.rule)
    if rule is None:
        return []
    variant = preview.variant if 0 <= preview.variant < max(1, len(rule.variants)) else 0
    return [Nudge(dataclasses.replace(rule, trigger="page_load", trigger_value=0), 0, variant)]


def group(n: Nudge) -> str:
    return "shadow" if n.shadow else "holdout" if n.held_out else "treatment"


def on_load(n: Nudge) -> bool:
    """Visible as soon as the page renders: inline content, and banners with no trigger or wait."""
    return n.rule.action.inline or (n.rule.action.kind == "banner" and not n.min_dwell and not n.wait
                                    and n.rule.trigger == "page_load")


# -- render ---------------------------------------------------------------------------------------


def page_style(engine: Engine, injection: Injection) -> str:
    """Our styles as the page's CSP allows them (inline, or as a stylesheet); "" when the page
    cannot run our script or take our styles: then nothing of ours goes on it."""
    if not injection.script:
        return ""
    if injection.inline_style:
        return render.style_tag(injection.style_nonce)
    if injection.external_style:
        return render.stylesheet_link(engine.style_href, injection.style_nonce)
    return ""


def render_nudges(engine: Engine, nudges: list[Nudge], attributes: dict[str, object], session: Session,
                  page: Page, now: int, preview: bool = False) -> list[tuple[Nudge, str]]:
    """The HTML of each nudge for showing; one with a placeholder lacking a value, or with nothing
    to recommend, is not shown."""
    rendered = []
    for nudge in nudges:
        html = None if nudge.hidden else render_nudge(engine, nudge, attributes, session, page, now, preview)
        if html is not None:
            rendered.append((nudge, html))
    return rendered


def render_nudge(engine: Engine, nudge: Nudge, attributes: dict[str, object], session: Session, page: Page,
                 now: int, preview: bool = False) -> str | None:
    action, currency = nudge.action, engine.ruleset.settings.currency
    try:
        texts = action.texts(attributes, currency)
    except MissingValue:
        return None
    href = cta_href(engine, nudge, session, now, preview)
    if action.kind == "modal":
        return render.modal(nudge, href or "#", texts)
    if action.kind == "banner":
        return render.banner(nudge, href, texts)
    if action.kind == "slot":
        return render.slot_content(nudge, href, texts)
    if action.kind == "badge":
        return render.badge(nudge, texts)
    products = recommend(engine.ruleset.catalog, session, page, action.sources, action.limit)
    return render.recommendations(nudge, products, currency, texts) if products else None


def cta_href(engine: Engine, nudge: Nudge, session: Session, now: int, preview: bool = False) -> str | None:
    """Where the button goes. A preview's offer button goes straight to the offer's page: a redeem
    link would be bound to the preview's throwaway visitor (refused) and must not count anyway."""
    rule = nudge.rule
    if rule.offer and preview:
        return rule.offer.redirect
    if rule.offer:
        token = engine.offers.mint(rule, session.visitor_id, now)
        return f"{REDEEM_PATH}?t={quote(token, safe='')}"
    return rule.action.url or None


def count_served(session: Session, page: Page, nudges: list[Nudge], rendered: list[tuple[Nudge, str]],
                 tracked: bool) -> list[Event]:
    """The page's measurement events: an exposure per decided nudge, an impression per nudge
    visible as the page loads (counted here, not by a beacon). The session notes what was served:
    beacons may report only on it. Nothing for an untracked visitor."""
    if not tracked:
        return []
    visitor = session.visitor_id
    events = [Event("exposure", visitor, n.rule.id, n.variant, group(n), page.type) for n in nudges]
    for nudge, _ in rendered:
        record_served(session, nudge.rule.id, on_load(nudge))
        if on_load(nudge):
            events.append(Event("impression", visitor, nudge.rule.id, nudge.variant, "treatment", page.type))
            if nudge.rule.counted:
                session.shown[nudge.rule.key] = session.shown.get(nudge.rule.key, 0) + 1
    return events


# -- place ----------------------------------------------------------------------------------------


def notices(cookies: dict[str, str], offer: Redeemed | None, shown: OfferShown | None, page: Page,
            preview: Preview | None) -> list[str]:
    """What opens the body before any nudge: a one-time message (a refused offer link), the
    redeemed offer's banner on its category (worded as its apply mode allows), the preview's note."""
    out = []
    message = MESSAGES.get(cookies.get(MESSAGE_COOKIE, ""))
    if message:
        out.append(render.notice(message))
    if offer and shown and page.category == offer.category:
        out.append(render.offer_banner(offer, shown.wording))
    if preview is not None:
        out.append(render.notice(f"Preview of {preview.rule} (variant {preview.variant}): "
                                 "shown at once, nothing recorded, no offer applied."))
    return out


def place(rendered: list[tuple[Nudge, str]], opening: list[str]) -> Placement:
    """Each rendered nudge where its kind goes, after the `opening` notices."""
    placed = Placement(body_start=list(opening))
    for nudge, html in rendered:
        kind = nudge.rule.action.kind
        if kind == "modal":
            placed.body_end.append(html)
        elif kind == "banner":
            placed.body_start.append(html)
        else:
            placed.slots[nudge.action.slot] = ("append" if kind == "badge" else "replace", html)
    return placed


def client_config(engine: Engine, page: Page, pv: int, shown: list[Nudge], tracked: bool,
                  edge_cart_seen: bool = False) -> dict[str, Any]:
    """The client script's configuration: whether to report, and how to reveal each nudge. Cart
    events are relayed until the edge has seen the shop's cart in this visit (a wrong route never
    leaves nudge blind); after that they would count for nothing, and a beacon sent with each add
    would race the cart request for the session cookie, so the client stops sending them."""
    return {
        "v": 1,
        "track": tracked,
        "cartEvents": not (engine.cart is not None and edge_cart_seen),
        "pv": pv,
        "beacon": BEACON_PATH,
        "page": {"type": page.type, "category": page.category, "product": page.product},
        "nudges": [client_nudge(n) for n in shown if not n.rule.action.inline],
    }


def client_nudge(n: Nudge) -> dict[str, object]:
    """What the client script needs to reveal a rendered nudge: how (trigger) and when.
    `counted`: shown as the page loads and already counted by the Worker (no beacon needed)."""
    rule = n.rule
    trigger, value = rule.trigger, rule.trigger_value
    if trigger in ("time_on_page", "cart_abandoned"):
        trigger, value = "time", n.wait  # seconds on this page
    return {"rule": rule.id, "kind": rule.action.kind, "trigger": trigger, "value": value,
            "minDwell": n.min_dwell, "variant": n.variant, "counted": on_load(n)}


# -- cookies --------------------------------------------------------------------------------------


def page_cookies(engine: Engine, secure: bool, session: Session, cookies: dict[str, str], tracked: bool,
                 preview: Preview | None) -> list[str]:
    """Set-Cookie headers of the page: the updated session for a tracked visitor, every nudge
    cookie erased for an untracked one, none in a preview; a shown one-time message cleared."""
    if preview is not None:
        out = []
    elif tracked:
        out = [engine.session_cookie(session, secure)]
    else:
        out = engine.erase_cookies(cookies, secure)
    if tracked and MESSAGE_COOKIE in cookies:
        out.append(set_cookie(MESSAGE_COOKIE, "", max_age=0, secure=secure))
    return out
