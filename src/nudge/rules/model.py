"""What a rule set is: rules (trigger, conditions, action, offer, caps, schedule), page patterns and
site settings, as the Worker decides with them. `rules/load.py` builds one from the TOML files
marketers write, validating every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nudge.delivery.exclusions import DEFAULT_EXCLUDE
from nudge.delivery.price_selectors import PriceSelector
from nudge.offer_apply import DEFAULT_MODE
from nudge.rules.conditions import Matcher
from nudge.rules.product_feed import EMPTY, ShopCatalog
from nudge.rules.schedule import ALWAYS, Schedule
from nudge.rules.templates import Template, compile_template
from nudge.visitor.cart_routes import CartEndpoints
from nudge.visitor.pages import PAGE_TYPES, PageClassifier

TRIGGERS = ("page_load", "exit_intent", "time_on_page", "inactivity", "scroll", "cart_abandoned",
            "browse_abandoned")
# Triggers that take a number: seconds on the page, seconds idle, percent scrolled, minutes since
# the last cart change (without checkout) or since the shopper was last seen; their allowed range.
TRIGGER_VALUES = {"time_on_page": (1, 3600), "inactivity": (5, 3600), "scroll": (1, 100),
                  "cart_abandoned": (1, 7 * 24 * 60), "browse_abandoned": (1, 7 * 24 * 60)}
STOP_AFTER = ("click", "conversion", "never")
ACTION_KINDS = ("modal", "banner", "slot", "badge", "recommendations", "webhook")
# Follow-ups beyond the visit: a `webhook` action, sent through a queue after the shopper left.
FOLLOWUP_TRIGGERS = ("cart_abandoned", "browse_abandoned")
MAX_FOLLOWUP_MINUTES = 12 * 60  # Cloudflare Queues delay a message at most 12 hours
# Kinds that fill a marked element of the page (data-nudge-slot="name") in the initial HTML: content
# rather than messages, so they are shown on page load, take no part in the page's and visit's
# message limits, and are capped only when the rule says so.
INLINE_KINDS = ("slot", "badge", "recommendations")
UNCAPPED = 1000


@dataclass(frozen=True)
class Texts:
    """An action's texts for one visitor, as escaped HTML."""

    title: str
    body: str
    button: str
    dismiss: str


@dataclass(frozen=True)
class Action:
    kind: str
    title: str
    body: str
    button: str
    dismiss: str
    url: str  # where the button goes when the rule has no offer ("" for none)
    slot: str = ""  # inline kinds: the data-nudge-slot they fill
    sources: tuple[str, ...] = ()  # recommendations: recommend.SOURCES, in order of preference
    limit: int = 4  # recommendations (and a webhook's recommendations): at most this many products
    templates: tuple[Template, ...] = field(default=(), repr=False, compare=False)  # title, body, button, dismiss

    @property
    def inline(self) -> bool:
        return self.kind in INLINE_KINDS

    @property
    def followup(self) -> bool:
        return self.kind == "webhook"

    def texts(self, attributes: dict[str, Any], currency: str = "USD") -> Texts:
        """The texts with their placeholders filled; raises MissingValue when one has no value."""
        t = self.templates or tuple(compile_template(x) for x in (self.title, self.body, self.button, self.dismiss))
        return Texts(*(x.render(attributes, currency) for x in t))


@dataclass(frozen=True)
class Caps:
    per_session: int = 1  # reveals per visit
    per_day: int | None = None  # reveals per UTC day, across visits (from the KV profile)
    per_lifetime: int | None = None
    cooldown_hours: int | None = None  # after a dismiss, across visits
    stop_after: str = "click"  # never again after a click, a conversion, or "never" stop


@dataclass(frozen=True)
class Offer:
    code: str
    percent: int
    category: str
    redirect: str  # same-site path the shopper lands on after redeeming
    valid_hours: int  # the offer lasts this long after redemption...
    until_midnight: bool  # ...or until local midnight ("today only"), whichever is first
    timezone: str
    amount: float | None = None  # a fixed amount off instead of a percentage
    max_per_day: int | None = None  # discount budget: redemptions per day across all visitors
    not_after_purchase_days: int = 30  # no offer to a shopper who bought within this many days (0: off)
    apply: str | None = None  # how the cart gets it (offer_apply.py); None: the site's [shop] offer_apply


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    enabled: bool
    pages: tuple[str, ...]  # page types; empty with no url_globs: every page
    trigger: str
    when: Mapping[str, Any]
    action: Action
    offer: Offer | None
    priority: int
    file: str
    caps: Caps = field(default_factory=Caps)
    trigger_value: int = 0  # seconds, percent or minutes (TRIGGER_VALUES)
    url_globs: tuple[str, ...] = ()  # "/sale/*"
    variants: tuple[tuple[float, Action], ...] = ()  # (weight, action); empty: the action alone
    holdout: float = 0.0  # percent of visitors who never see it (the control group)
    rollout: float = 100.0  # percent of visitors it applies to at all
    schedule: Schedule = ALWAYS
    dwell_categories: frozenset[str] = frozenset()  # categories whose dwell the condition reads
    match: Matcher = field(default=lambda _a: True, repr=False, compare=False)  # `when`, compiled
    key: int = 0  # key32(id), as the session and profile record the rule
    counted: bool = True  # reveals are counted for caps (inline kinds only when the rule has [caps])
    shadow: bool = False  # evaluated and measured as if live, never shown

    @property
    def per_session(self) -> int:
        return self.caps.per_session


@dataclass(frozen=True)
class Settings:
    """Global limits for every rule (rules/site.toml [nudges])."""

    max_per_page: int = 2  # messages (modal, banner) per page
    max_per_session: int = 6  # message reveals per visit
    currency: str = "USD"  # how {{ x | money }} and rewritten prices are written
    free_shipping_over: float | None = None  # the shop's threshold, for cart.free_shipping_left
    offer_apply: str = DEFAULT_MODE  # how offers reach the cart unless an offer says (offer_apply.py)
    offer_apply_url: str = ""  # the platform's apply-by-URL, "/discount/{code}?redirect={redirect}"
    offer_header: str = "confirmed"  # "honoured": the cart charges X-Nudge-Offer's price everywhere
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE  # path globs passed through untouched ([site] exclude)
    prices: tuple[PriceSelector, ...] = ()  # elements showing prices without nudge's markup ([site] prices)


@dataclass(frozen=True)
class RuleSet:
    classifier: PageClassifier
    rules: tuple[Rule, ...]  # by priority (highest first), then file order
    cart: CartEndpoints | None = None
    settings: Settings = field(default_factory=Settings)
    catalog: ShopCatalog = EMPTY
    followups: tuple[Rule, ...] = ()  # webhook rules, sent after the visit (followups/), never on pages
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)
    _by_page: dict[str, tuple[Rule, ...]] = field(default_factory=dict, repr=False, compare=False)
    message_keys: set[int] = field(default_factory=set, repr=False, compare=False)  # rules that are messages
    _last_inline: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Indexes rules by id and by page type, so a request pays only for its candidates."""
        self._by_id.update((r.id, r) for r in self.rules)
        self.message_keys.update(r.key for r in self.rules if not r.action.inline)
        for page_type in PAGE_TYPES:
            self._by_page[page_type] = tuple(
                r for r in self.rules if r.enabled and (not r.pages and not r.url_globs
                                                        or page_type in r.pages or r.url_globs))
            self._last_inline[page_type] = max(
                (i for i, r in enumerate(self._by_page[page_type]) if r.action.inline), default=-1)

    def rule(self, rule_id: str) -> Rule | None:
        """An on-site rule by id (follow-ups are not: nothing on a page can name one)."""
        return self._by_id.get(rule_id)

    def followup(self, rule_id: str) -> Rule | None:
        return next((r for r in self.followups if r.id == rule_id), None)

    def last_inline(self, page_type: str) -> int:
        """The position of the last inline rule among the page type's candidates (-1: none), so a
        page whose messages are settled need not walk the rest."""
        return self._last_inline.get(page_type, -1)

    def candidates(self, page_type: str) -> tuple[Rule, ...]:
        """Enabled rules that may apply to a page of this type, in priority order (rules with URL
        globs are candidates everywhere; their glob is checked per request)."""
        return self._by_page.get(page_type, ())
