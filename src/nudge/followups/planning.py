"""Follow-ups beyond the visit: cart and browse abandonment, sent as a signed webhook.

A Worker only runs while the shopper is on the site, so a follow-up is a queue message delayed by
the rule's window. Every qualifying request (a cart change, a page view with items in the cart, a
product view with none) reschedules: it records the newest due time in KV
(`kv_keys.pending_key`, a `Pending`) and enqueues a message for it. When a message comes
due, the consumer re-reads KV and sends only if that message is still the newest, nothing cancelled
it (checkout, purchase, a cart started, consent withdrawn, forget), the visitor is a known customer
and the rule's caps allow. Plain Python: the edge does the queue, KV and fetch calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nudge.followups.messages import ACTIONS, MAX_ITEMS, FollowUp, Pending, event_id
from nudge.rules.bucketing import in_rollout
from nudge.rules.model import Rule
from nudge.rules.schedule import is_active
from nudge.visitor.session import UNNAMED_LINE, Session


def qualifies(rule: Rule, session: Session, attributes: Mapping[str, Any]) -> bool:
    """Whether this request (re)schedules the rule's follow-up: a cart waiting without checkout for
    cart abandonment, product views and an empty cart for browse abandonment, and the rule's own
    conditions. Schedules, rollout and holdout are applied when the message comes due."""
    if not rule.enabled or session.checkout_started:
        return False
    if rule.trigger == "cart_abandoned" and not session.cart:
        return False
    if rule.trigger == "browse_abandoned" and (session.cart or not session.products):
        return False
    return rule.match(attributes)


def followup_message(rule: Rule, session: Session, now: int, site: str) -> FollowUp:
    """The message for a qualifying request: due the rule's window from now."""
    due = now + rule.trigger_value * 60
    if rule.trigger == "cart_abandoned":
        items = tuple(list((k, q) for k, q in session.cart.items() if k != UNNAMED_LINE)[:MAX_ITEMS])  # nameable lines
        category = None
    else:
        items = tuple((p.id, 1) for p in reversed(session.products))
        seen = session.categories
        category = max(seen, key=lambda k: seen[k].last_seen) if seen else None
    return FollowUp(event_id(rule.id, session.visitor_id, due), rule.id, session.visitor_id, ACTIONS[rule.trigger],
                    due, now, site, items, category)


@dataclass(frozen=True)
class Before:
    """What a request's session held before it changed, to notice the changes that cancel."""

    cart: bool
    checkout: bool

    @classmethod
    def of(cls, session: Session) -> Before:
        return cls(bool(session.cart), session.checkout_started)


def cancelled_by(rule: Rule, before: Before, after: Session, purchased: bool) -> str | None:
    """Why a request ends a pending follow-up of this rule (one KV write, on the change only)."""
    if purchased:
        return "purchase"
    if rule.trigger == "cart_abandoned" and after.checkout_started and not before.checkout:
        return "checkout"
    if rule.trigger == "browse_abandoned" and after.cart and not before.cart:
        return "cart"
    return None


@dataclass
class FollowUpPlan:
    """What one request does to follow-ups: messages to enqueue (each with its pending state) and
    pending ones to cancel (rule id, reason)."""

    visitor: str = ""
    schedule: list[FollowUp] = field(default_factory=list)
    cancel: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.schedule or self.cancel)


def plan_followups(rules: tuple[Rule, ...], before: Before, session: Session, attributes: Mapping[str, Any], now: int,
         site: str, purchased: bool = False) -> FollowUpPlan:
    """The follow-ups a request schedules or cancels."""
    out = FollowUpPlan(session.visitor_id)
    for rule in rules:
        reason = cancelled_by(rule, before, session, purchased)
        if reason:
            out.cancel.append((rule.id, reason))
        elif site and qualifies(rule, session, attributes):
            out.schedule.append(followup_message(rule, session, now, site))
    return out


def skip_reason(message: FollowUp, rule: Rule | None, pending: Pending | None, last_order: int,
                contact: str | None, now: int) -> str | None:
    """None when the follow-up is to be sent now; else why not (logged, never retried)."""
    if rule is None or not rule.action.followup or not rule.enabled:
        return "rule removed or disabled"
    if pending is None:
        return "nothing pending (forgotten, or never stored)"
    if message.event in pending.sent_events:
        return "already sent"
    if pending.cancelled:
        return f"cancelled: {pending.cancelled}"
    if pending.event != message.event:
        return "superseded by later activity"
    if last_order >= message.queued:
        return "cancelled: purchase"
    if contact is None:
        return "anonymous visitor (no logged-in customer id)"
    if not is_active(rule.schedule, now):
        return "outside the rule's schedule"
    if not in_rollout(rule.id, message.visitor, rule.rollout):
        return "outside the rule's rollout"
    caps = rule.caps
    if caps.per_lifetime is not None and len(pending.sent) >= caps.per_lifetime:
        return "cap: per_lifetime"
    if caps.per_day is not None and sum(1 for t in pending.sent if t > now - 86_400) >= caps.per_day:
        return "cap: per_day"
    if caps.cooldown_hours is not None and pending.sent and now - pending.sent[-1] < caps.cooldown_hours * 3600:
        return "cap: cooldown_hours"
    return None
