"""GET /_nudge/redeem: a nudge's offer link (?t=TOKEN, bound to one browser) or a follow-up's
single-use code (?code=CODE, any browser once) becomes the offer cookie, then a redirect to the
offer's page. What the redemption ledger must be asked first is decided here too (`*_claim`), so
the runtime only carries the question and the verdict.

Its own module because it is where money is promised: every refusal lands on the shop with a polite
one-time message (MESSAGES, shown by the next page), never an error page and never a second offer.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from nudge.events import Event, rule_event
from nudge.followups.messages import IssuedCode
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.kv_keys import KEEP_VISITOR, code_ledger_key, visitor_key
from nudge.ledger import ENDED, REDEEMED, UNAVAILABLE, USED, LedgerClaim
from nudge.offers import OFFER_COOKIE, Redeemed, offer_expiry
from nudge.reply import Reply, redirect
from nudge.rules.model import Rule
from nudge.signing import BadData
from nudge.visit_reports import KeyEvent, visit_begun
from nudge.visitor.cookies import set_cookie
from nudge.visitor.session import Session
from nudge.visitor.tracking import close_rule, is_closed

if TYPE_CHECKING:
    from nudge.engine import Engine

MESSAGE_COOKIE = "nudge_msg"
MESSAGES = {
    "offer-expired": "Sorry, that offer link has expired or was meant for another browser.",
    "offer-used": "You have already used this offer.",
    "offer-ended": "Sorry, that offer has been fully claimed for today.",
    "offer-unavailable": "Sorry, we could not apply that offer just now. Please try the link again in a minute.",
}
_REFUSED = {USED: "offer-used", ENDED: "offer-ended", UNAVAILABLE: "offer-unavailable"}  # ledger verdict -> message


def polite(location: str, message: str, secure: bool) -> Reply:
    """A redirect to the shop carrying a one-time message the next page shows (MESSAGES)."""
    return redirect(location, set_cookie(MESSAGE_COOKIE, message, max_age=120, secure=secure))


def offer_rule(engine: Engine, query: str, session: Session, now: int) -> Rule | None:
    """The rule whose offer a redeem link's token names, when the token is good for this visitor."""
    token = (parse_qs(query).get("t") or [""])[0]
    try:
        rule = engine.ruleset.rule(engine.offers.verify(token, session.visitor_id, now))
    except BadData:
        return None
    return rule if rule is not None and rule.offer is not None else None


def redeem_claim(engine: Engine, query: str, session: Session, now: int,
                 active: Redeemed | None = None) -> LedgerClaim | None:
    """What the edge asks the redemption ledger before `redeem` (None: the answer needs no
    ledger - a bad link, a second click, a rule this session already closed)."""
    rule = offer_rule(engine, query, session, now)
    if rule is None or rule.offer is None or (active is not None and active.rule_id == rule.id):
        return None
    if is_closed(session, rule.id):
        return None
    return LedgerClaim(rule.id, visitor_key(engine.ledger_secret, session.visitor_id), rule.offer.max_per_day or 0,
                       now + KEEP_VISITOR)


def redeem(engine: Engine, memory: IsolateMemory, query: str, session: Session, now: int, secure: bool,
           active: Redeemed | None = None, verdict: str = REDEEMED) -> tuple[Reply, KeyEvent]:
    """GET /_nudge/redeem?t=TOKEN: applies the offer once, then redirects to its same-site page.
    `verdict` is the redemption ledger's answer to `redeem_claim` (ledger.py). A bad, expired or
    already used link, one whose daily budget is spent (then the isolate's memory notes it), or
    one the ledger could not record lands on the shop with a polite message instead, and no offer."""
    rule = offer_rule(engine, query, session, now)
    if rule is None or rule.offer is None:
        return polite("/", "offer-expired", secure), KeyEvent()
    offer = rule.offer
    landing = engine.offer_landing(rule.id, offer.code, offer.redirect)
    if active is not None and active.rule_id == rule.id:  # a second click: same offer, once
        return redirect(landing), KeyEvent()
    if is_closed(session, rule.id):  # redeemed earlier and since expired or removed: single use
        return polite(offer.redirect, "offer-used", secure), KeyEvent()
    if verdict == ENDED:
        memory.budgets.mark_spent(rule.id, now)  # stop showing it today
    if verdict != REDEEMED:
        return polite(offer.redirect, _REFUSED.get(verdict, "offer-unavailable"), secure), KeyEvent()
    redeemed = Redeemed(rule.id, offer.code, offer.percent, offer.category, offer_expiry(offer, now), offer.amount)
    close_rule(session, rule.id)
    stop = (key32(rule.id),) if rule.caps.stop_after == "click" else ()
    return (_applied(engine, redeemed, landing, session, now, secure),
            KeyEvent(redeemed=1, stopped=stop, events=[rule_event("click", rule, session.visitor_id)],
                     began_visit=visit_begun(session)))


def code_claim(issued: IssuedCode | None, now: int, active: Redeemed | None = None) -> LedgerClaim | None:
    """What the edge asks the redemption ledger before `redeem_code` (None: no need). Codes
    are single use but outside the rule's daily budget: the shop promised them off-site."""
    if issued is None or issued.expires <= now or issued.used or (active is not None and active.code == issued.code):
        return None
    return LedgerClaim(issued.rule, code_ledger_key(issued.code), 0, issued.expires)


def redeem_code(engine: Engine, issued: IssuedCode | None, session: Session, now: int, secure: bool,
                active: Redeemed | None = None, verdict: str = REDEEMED) -> tuple[Reply, KeyEvent]:
    """GET /_nudge/redeem?code=CODE: a follow-up's single-use code (its details looked up in KV
    by the edge), good in any browser once - `verdict` is the redemption ledger's answer to
    `code_claim`; then as a button's offer."""
    if issued is None or issued.expires <= now:
        return polite("/", "offer-expired", secure), KeyEvent()
    landing = engine.offer_landing(issued.rule, issued.code, issued.redirect)
    if active is not None and active.code == issued.code:  # the same browser clicking again
        return redirect(landing), KeyEvent()
    if issued.used:  # marked in KV by an older version
        return polite(issued.redirect, "offer-used", secure), KeyEvent()
    if verdict != REDEEMED:
        return polite(issued.redirect, _REFUSED.get(verdict, "offer-unavailable"), secure), KeyEvent()
    redeemed = Redeemed(issued.rule, issued.code, issued.percent, issued.category, issued.expires, issued.amount)
    click = Event("click", session.visitor_id, issued.rule, 0, "treatment")
    return (_applied(engine, redeemed, landing, session, now, secure),
            KeyEvent(redeemed=1, events=[click], code=dataclasses.replace(issued, used=now),
                     began_visit=visit_begun(session)))


def _applied(engine: Engine, redeemed: Redeemed, location: str, session: Session, now: int, secure: bool) -> Reply:
    """The redirect that applies an offer: its cookie until it expires, and the updated session."""
    session.last_seen = now
    offer_cookie = set_cookie(OFFER_COOKIE, engine.offers.cookie(redeemed), max_age=redeemed.expires - now,
                              secure=secure)
    return redirect(location, offer_cookie, engine.session_cookie(session, secure))
