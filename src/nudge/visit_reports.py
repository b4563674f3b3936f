"""What a visit reports outside a page: the browser's beacon (POST /_nudge/beacon) and the order the
shop confirmed (X-Nudge-Order). Each changes the session, and returns a `KeyEvent`: what belongs in
the long-term profile, the measurement events and the follow-ups it changes.

Apart from the page plan because it is a different request with a different trust: the beacon is the
browser's word (validated here, admitted by `tracking.apply_beacon`), the order is the shop's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nudge.events import Event, rule_event
from nudge.followups.messages import IssuedCode
from nudge.followups.planning import Before, FollowUpPlan
from nudge.guard import BEACON_MEDIA_TYPE, beacon_media_refusal
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.reply import Reply, json_reply
from nudge.rules.model import RuleSet
from nudge.visitor.beacon import Beacon, BeaconError, parse_beacon
from nudge.visitor.beacon import Event as BeaconEvent
from nudge.visitor.profile import Profile, merged_profile
from nudge.visitor.purchases import ShopOrder
from nudge.visitor.session import Session
from nudge.visitor.tracking import apply_beacon as admit_beacon
from nudge.visitor.tracking import first_time, record_order

if TYPE_CHECKING:
    from nudge.engine import Engine


@dataclass
class KeyEvent:
    """Counts a beacon or redemption reports that belong in the long-term profile, and the visit
    such a request began."""

    orders: int = 0
    revenue: int = 0  # cents
    redeemed: int = 0
    stopped: tuple[int, ...] = ()  # key32 of rules to stop for good (clicked, or converted)
    events: list[Event] = field(default_factory=list)  # measurement events (not profile changes)
    followups: FollowUpPlan = field(default_factory=FollowUpPlan)
    code: IssuedCode | None = None  # a single-use code this request redeemed (the ledger recorded it)
    began_visit: Session | None = None  # the visit this request began (visit_begun): counted with the merge

    def __bool__(self) -> bool:
        return bool(self.orders or self.redeemed or self.stopped or self.began_visit)


def visit_begun(session: Session) -> Session | None:
    """`session`, when this request began its visit (the first request, or the first after 30
    minutes idle) and is no page: its answer stores the session, so no page will be the visit's
    first, and the request's own profile merge counts the visit instead (profile_after)."""
    return session if session.is_new else None


def profile_after(stored: Profile | None, event: KeyEvent, now: int, identity: str | None = None) -> Profile:
    """The stored profile with a key event (and an identity link) merged in; a visit the request
    began counts as a visit's first page would count it: one visit more, and the interest of the
    visit that ended."""
    began = event.began_visit
    return merged_profile(stored, now, new_visit=began is not None, ended=began.ended if began else None,
                          orders=event.orders, revenue=event.revenue, redeemed=event.redeemed, identity=identity,
                          stopped=event.stopped)


def read_beacon(ruleset: RuleSet, method: str, body: bytes, content_type: str | None) -> Beacon | Reply:
    """POST /_nudge/beacon, first half: the validated beacon, or the error reply (405/415/400 with
    a reason; the session is then left untouched)."""
    if method != "POST":
        return json_reply(405, {"error": "use POST"}, [("Allow", "POST")])
    refusal = beacon_media_refusal(content_type)  # never an HTML form's encodings (CSRF)
    if refusal is not None:
        return Reply(415, refusal + "\n", "text/plain; charset=utf-8", [("Accept-Post", BEACON_MEDIA_TYPE)])
    try:
        beacon = parse_beacon(body, content_type)
    except BeaconError as exc:
        return json_reply(400, {"error": str(exc)})
    for event in beacon.events:
        if event.rule is not None and ruleset.rule(event.rule) is None:
            return json_reply(400, {"error": f"unknown rule {event.rule!r}"})
    return beacon


def apply_beacon(engine: Engine, memory: IsolateMemory, beacon: Beacon, session: Session, now: int, secure: bool,
                 site: str = "") -> tuple[Reply, KeyEvent]:
    """Second half: applies it and answers 204 with the session cookie, plus what the beacon
    changes (the caller merges it into the KV profile) and the follow-ups it changes. Only the
    events `tracking.apply_beacon` admits count; a browser's purchase never moves orders or
    revenue (it is measured as an unverified conversion)."""
    before = Before.of(session)
    engine.categorize_viewed(memory.learned, session, now)  # the page's category may have been learned as it streamed
    counted = admit_beacon(session, beacon, now)
    cookie = engine.session_cookie(session, secure)
    # Only a visit after one that ended: a beacon without a session cookie comes from a browser that
    # keeps none (a page set one), and counting it would write a profile no request will read.
    began = visit_begun(session) if session.ended is not None else None
    event = KeyEvent(stopped=stopped_by(engine.ruleset, counted, session, False),
                     events=beacon_events(engine.ruleset, counted, session.visitor_id),
                     followups=engine.off_page_followups(before, session, now, site),
                     began_visit=began)
    return Reply(204, "", headers=[("Set-Cookie", cookie)]), event


def order_seen(engine: Engine, order: ShopOrder, session: Session, now: int, site: str = "") -> KeyEvent | None:
    """An order the shop's origin confirmed (X-Nudge-Order): counted into the session, the
    profile (the returned KeyEvent) and the measurement as a conversion, once per order id in
    this visit (the edge also guards across visits in KV); None for a repeat."""
    if not first_time(session, "order:" + order.id):
        return None
    before, revenue = Before.of(session), session.revenue
    record_order(session, order.value, now)
    return KeyEvent(1, session.revenue - revenue, stopped=stopped_by(engine.ruleset, (), session, True),
                    events=[Event("conversion", session.visitor_id, revenue=order.value)],
                    followups=engine.off_page_followups(before, session, now, site, purchased=True))


def beacon_events(ruleset: RuleSet, counted: list[BeaconEvent], visitor: str) -> list[Event]:
    """Measurement events of a client report's admitted events: reveals, clicks, dismisses, and
    purchases the browser claims (kind "conversion_unverified": the report leaves them out)."""
    kinds = {"nudge_shown": "impression", "nudge_clicked": "click", "nudge_dismissed": "dismiss"}
    out = []
    for item in counted:
        rule = ruleset.rule(item.rule) if item.rule else None
        if item.type in kinds and rule is not None:
            out.append(rule_event(kinds[item.type], rule, visitor))
        elif item.type == "purchase":
            out.append(Event("conversion_unverified", visitor, revenue=item.value))
    return out


def stopped_by(ruleset: RuleSet, counted: Iterable[BeaconEvent], session: Session, converted: bool) -> tuple[int, ...]:
    """Rules to stop for good: clicked ones with stop_after "click", and on a confirmed order
    the ones shown this visit with stop_after "conversion"."""
    stopped = []
    for event in counted:
        rule = ruleset.rule(event.rule) if event.type == "nudge_clicked" and event.rule else None
        if rule is not None and rule.caps.stop_after == "click":
            stopped.append(key32(rule.id))
    if converted:
        stopped += [key32(r.id) for r in ruleset.rules
                    if r.caps.stop_after == "conversion" and key32(r.id) in session.shown]
    return tuple(stopped)
