"""GET /_nudge/redeem through the engine: offer links applied once, refused politely (the ledger's
side is in test_ledger.py)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from nudge.isolate_memory import IsolateMemory
from nudge.visitor.session import Session
from nudge.visitor.tracking import is_closed

from .factories import NOW, PRODUCTS, RULE, cookie_value, make_app, visit

APP = make_app()


def test_redeem_sets_offer_closes_rule_and_redirects_same_site() -> None:
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    href = unquote(re.search(r'href="/_nudge/redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    reply, event = APP.redeem(IsolateMemory(), f"t={href}", session, NOW + 10, secure=True)
    assert reply.status == 303 and event.redeemed == 1
    headers = dict((k, v) for k, v in reply.headers if k != "Set-Cookie")
    assert headers["Location"] == "/collections/sneakers"
    cookies = dict(cookie_value(v) for k, v in reply.headers if k == "Set-Cookie")
    offer = APP.active_offer(cookies, NOW + 10)
    assert offer is not None and offer.percent == 10 and offer.category == "sneakers"
    assert APP.origin_headers(offer)["X-Nudge-Offer"].startswith("code=SNEAKERS10; percent=10")
    after = APP.load_session(cookies, NOW + 11)
    assert is_closed(after, RULE)
    _, body = visit(APP, ["/collections/sneakers"])
    assert "nudge-modal" not in body



def test_redeem_rejects_foreign_and_forged_tokens() -> None:
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    other = Session.fresh(NOW, b"someone")
    for query, who in [(f"t={token}", other), ("t=forged.token", session), ("", session), ("t=" + "A" * 600, session)]:
        reply, event = APP.redeem(IsolateMemory(), query, who, NOW, secure=True)
        headers = dict(reply.headers)
        assert reply.status == 303 and not event and headers["Location"] == "/"
        assert headers["Set-Cookie"].startswith("nudge_msg=offer-expired;")  # no offer, a polite note



def test_an_offer_is_redeemed_once() -> None:
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    first, event = APP.redeem(IsolateMemory(), f"t={token}", session, NOW + 10, secure=True)
    assert event.redeemed == 1
    cookies = dict(cookie_value(v) for k, v in first.headers if k == "Set-Cookie")
    active = APP.active_offer(cookies, NOW + 11)
    again, event = APP.redeem(IsolateMemory(), f"t={token}", session, NOW + 12, secure=True, active=active)
    assert again.status == 303 and not event and not any(k == "Set-Cookie" for k, _ in again.headers)
    later, event = APP.redeem(IsolateMemory(), f"t={token}", session, NOW + 13, secure=True, active=None)  # offer gone
    assert not event and dict(later.headers)["Set-Cookie"].startswith("nudge_msg=offer-used;")


def test_a_redemption_that_begins_a_visit_counts_it() -> None:
    """An offer link followed after 30 idle minutes: the redirect stores the new visit's session, so
    the landing page is not the visit's first; the redemption's key event counts the visit."""
    session, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    later = NOW + 40 * 60  # the link still good (an hour), the visit over
    returning = APP.load_session({"nudge": APP.codec.encode(session)}, later)
    reply, event = APP.redeem(IsolateMemory(), f"t={token}", returning, later, secure=True)
    assert reply.status == 303 and event.redeemed == 1 and event.began_visit is returning
    assert returning.ended is not None  # the visit that ended, folded into the profile with it
    _, within = APP.redeem(IsolateMemory(), f"t={token}", session, NOW + 10, secure=True)  # the same visit
    assert within.redeemed == 1 and within.began_visit is None
