"""Which nudges a page gets: page, schedule, caps, rollout and conditions per rule; then the
governor (one modal per page, max nudges per page and per session); holdout and variant last."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from nudge.rules.bucketing import choose_variant, in_holdout, in_rollout
from nudge.rules.model import Action, Rule, RuleSet
from nudge.rules.schedule import is_active
from nudge.visitor.attributes import with_extra_dwell
from nudge.visitor.pages import Page
from nudge.visitor.profile import Profile
from nudge.visitor.session import MAX_DWELL_PER_PAGE, Session

log = logging.getLogger("nudge")


@dataclass(frozen=True)
class Nudge:
    rule: Rule
    min_dwell: int  # visible seconds on this page before the client may reveal it (0: now)
    variant: int = 0
    held_out: bool = False  # in the rule's control group: decided, never shown
    wait: int = 0  # for time-based triggers: seconds on this page before the reveal
    shadow: bool = False  # the rule (or the whole Worker) runs in shadow mode: measured, never shown

    @property
    def hidden(self) -> bool:
        """Decided but not for showing: held out, or in shadow mode."""
        return self.held_out or self.shadow

    @property
    def action(self) -> Action:
        return self.rule.variants[self.variant][1] if self.rule.variants else self.rule.action


def decide(ruleset: RuleSet, attributes: dict[str, Any], page: Page, session: Session, now: int,
           profile: Profile | None = None, path: str = "/",
           spent: frozenset[str] = frozenset(), shadow: bool = False,
           why: dict[str, str] | None = None) -> list[Nudge]:
    """The nudges decided for this page, highest priority first. Held-out nudges are included (so
    they can be measured) but do not count against the page's limits, and so are shadow ones
    (`shadow`: the whole Worker is in shadow mode). `spent`: rules whose discount budget for
    today is used up. `why`, when given, receives the reason each candidate was left out."""
    settings = ruleset.settings
    # Fatigue cap on messages (modals, banners): this visit has seen enough. Inline content stays.
    fatigued = sum(n for k, n in session.shown.items() if k in ruleset.message_keys) >= settings.max_per_session
    visitor = session.visitor_id
    chosen: list[Nudge] = []
    shown = 0
    slots: set[str] = set()  # one rule per slot, the highest priority one
    # No interstitial on the landing page of a visit from a search engine (they demote pages that
    # greet searchers with one): count it as if this page already had its modal.
    searched = session.pages <= 1 and is_search_engine(session.source.referrer)
    has_modal = searched
    last_inline = ruleset.last_inline(page.type)
    for i, rule in enumerate(ruleset.candidates(page.type)):
        inline = rule.action.inline
        if why is None and (fatigued or shown >= settings.max_per_page):  # no more messages here
            if i > last_inline:
                break  # and no inline rule after this one: nothing left to decide
            if not inline:
                continue
        if why is None and inline and rule.action.slot in slots:
            continue  # the governor would refuse it anyway: skip the work
        timing = _timing(rule, attributes, page, path, session, profile, now, spent)
        reason = timing if isinstance(timing, str) else None
        if reason is None:  # the governor: one policy for every message
            if inline and rule.action.slot in slots:
                reason = f"governor: slot {rule.action.slot!r} is filled by a higher-priority rule"
            elif not inline and fatigued:
                reason = f"governor: this visit has seen {settings.max_per_session} messages (max_per_session)"
            elif not inline and shown >= settings.max_per_page:
                reason = f"governor: this page has {settings.max_per_page} messages (max_per_page)"
            elif rule.action.kind == "modal" and has_modal:
                reason = ("governor: no modal on the landing page from a search engine" if searched
                          else "governor: one modal per page")
        if reason is not None or isinstance(timing, str):
            if why is not None:
                why[rule.id] = reason or "condition: false"
            continue
        min_dwell, wait = timing
        variant = choose_variant(rule.id, visitor, [w for w, _ in rule.variants]) if rule.variants else 0
        nudge = Nudge(rule, min_dwell, variant, in_holdout(rule.id, visitor, rule.holdout), wait, shadow or rule.shadow)
        chosen.append(nudge)
        if inline:
            slots.add(rule.action.slot)
        elif not nudge.hidden:
            shown += 1
            has_modal = has_modal or rule.action.kind == "modal"
    return chosen


def _timing(rule: Rule, attributes: dict[str, Any], page: Page, path: str, session: Session,
            profile: Profile | None, now: int, spent: frozenset[str]) -> tuple[int, int] | str:
    """When the rule may show on this page, as (min_dwell, wait) seconds (see Nudge), or why it
    cannot. Never raises: one broken rule must not cost the page its other rules."""
    try:
        reason = _left_out(rule, attributes, page, path, session, profile, now, spent)
        if reason is not None:
            return reason
        min_dwell = _seconds_until_match(rule, attributes, page)
        if min_dwell is None:
            return "condition: false"
        wait = _trigger_wait(rule, attributes)
        if wait is None:
            return "trigger: cannot fire on this page (cart empty or checkout started)"
        return min_dwell, wait
    except Exception:
        log.exception("nudge: rule %s failed for this request; skipped", rule.id)
        return "error: the rule failed for this request (see the logs)"


def _left_out(rule: Rule, attributes: dict[str, Any], page: Page, path: str, session: Session,
              profile: Profile | None, now: int, spent: frozenset[str]) -> str | None:
    """Why a candidate rule cannot apply to this request before its condition is looked at."""
    if not _on_page(rule, page, path):
        return "page: not one of the rule's pages or URL globs"
    if not is_active(rule.schedule, now):
        return "schedule: not active now"
    capped = _capped(rule, session, profile, now)
    if capped:
        return f"cap: {capped}"
    if not in_rollout(rule.id, session.visitor_id, rule.rollout):
        return f"rollout: this visitor is outside the {rule.rollout:g}% rollout"
    if rule.offer is not None and _no_offer(rule, page, attributes, session, profile, now, spent):
        return "offer guardrail: checkout, a recent purchase, or today's discount budget is spent"
    return None


def _no_offer(rule: Rule, page: Page, attributes: dict[str, Any], session: Session,
              profile: Profile | None, now: int, spent: frozenset[str]) -> bool:
    """Discount guardrails: never to a shopper already in checkout (they were going to buy), nor to
    one who bought within the offer's `not_after_purchase_days`, nor past the rule's daily budget."""
    offer = rule.offer
    if offer is None:
        return False
    if rule.id in spent or page.type in ("checkout", "confirmation") or attributes["cart"]["checkout_started"]:
        return True
    if not offer.not_after_purchase_days:
        return False
    last = profile.last_order if profile else 0
    return session.orders > 0 or bool(last and now - last < offer.not_after_purchase_days * 86_400)


SEARCH_ENGINES = ("google.", "bing.com", "duckduckgo.com", "search.yahoo.", "yahoo.com", "baidu.com",
                  "yandex.", "ecosia.org", "search.brave.com", "startpage.com", "qwant.com", "naver.com")


def is_search_engine(host: str | None) -> bool:
    if not host:
        return False
    return any(host.startswith(e) or f".{e}" in f".{host}" for e in SEARCH_ENGINES)


def _on_page(rule: Rule, page: Page, path: str) -> bool:
    if not rule.pages and not rule.url_globs:
        return True
    return page.type in rule.pages or any(fnmatchcase(path, glob) for glob in rule.url_globs)


def _capped(rule: Rule, session: Session, profile: Profile | None, now: int) -> str | None:
    """Which cap stops the rule for this visitor, if any."""
    caps = rule.caps
    shown_now = session.shown.get(rule.key, 0)
    if rule.key in session.closed:
        return "clicked or dismissed in this visit"
    if shown_now >= caps.per_session:
        return f"shown {shown_now} times in this visit (per_session {caps.per_session})"
    history = profile.nudges.get(rule.key) if profile else None
    if history is None:
        return None
    if history.stopped and caps.stop_after != "never":
        return f"stopped for good after a {caps.stop_after}"
    if caps.per_lifetime is not None and history.total + shown_now >= caps.per_lifetime:
        return f"per_lifetime {caps.per_lifetime} reached"
    if caps.per_day is not None and history.today(now) + shown_now >= caps.per_day:
        return f"per_day {caps.per_day} reached"
    cooldown = (caps.cooldown_hours or 0) * 3600
    if cooldown and history.last_closed and now - history.last_closed < cooldown:
        return f"cooldown of {caps.cooldown_hours} h after a dismiss"
    return None


def _trigger_wait(rule: Rule, attributes: dict[str, Any]) -> int | None:
    """Seconds on this page before a time-based trigger fires; None when it cannot fire here.
    `cart_abandoned` needs a cart with no checkout; it fires when the cart has been untouched
    for the rule's minutes (now, or after the rest of them on this page)."""
    if rule.trigger == "time_on_page":
        return rule.trigger_value
    if rule.trigger == "cart_abandoned":
        cart = attributes["cart"]
        if not cart["items"] or cart["checkout_started"] or cart["age_seconds"] is None:
            return None
        age: int = cart["age_seconds"]
        return max(0, rule.trigger_value * 60 - age)
    return 0


def _seconds_until_match(rule: Rule, attributes: dict[str, Any], page: Page) -> int | None:
    """0 when the rule matches now; for a rule revealed by a client trigger, the least number of
    further seconds on this page after which it matches (dwell grows while the page is open);
    None when staying on this page cannot make it match."""
    if rule.match(attributes):
        return 0
    if rule.trigger == "page_load" or not page.category or page.category not in rule.dwell_categories:
        return None  # staying longer on this page cannot change the outcome

    def matches_after(seconds: int) -> bool:
        return rule.match(with_extra_dwell(attributes, page.category or "", seconds))

    if not matches_after(MAX_DWELL_PER_PAGE):
        return None
    low, high = 1, MAX_DWELL_PER_PAGE  # matches_after(high) holds; find the least such second
    while low < high:
        mid = (low + high) // 2
        if matches_after(mid):
            high = mid
        else:
            low = mid + 1
    return high
