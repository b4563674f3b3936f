"""The visitor's long-term state in KV, written after the response: the identity link (one
profile for all of a customer's devices), the page's one profile write, key events merged in, and
the once-ever mark of a confirmed order. What the values mean is decided in nudge.visitor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from nudge.engine import Engine, KeyEvent
from nudge.kv_keys import CONTACT_TTL, contact_key, identity_key, profile_key
from nudge.runtime.bindings import Kv, WorkersError, started
from nudge.runtime.isolate import recent_profiles
from nudge.visit_reports import profile_after
from nudge.visitor.linking import adopt_link, already_linked, with_link
from nudge.visitor.profile import Profile, decode_profile, encode_profile
from nudge.visitor.purchases import ShopOrder
from nudge.visitor.session import Session

__all__ = ["ORDER_GUARD_BUDGET", "link_identity", "mark_order", "no_link", "order_unseen", "profile_writes",
           "record_key_event", "write_profile"]

log = logging.getLogger("nudge")

ORDER_GUARD_BUDGET = 0.5  # seconds a confirmation page waits for its order id's once-ever KV mark


async def link_identity(env: Any, ctx: Any, app: Engine, session: Session, user: str, now: int,
                        budget: float | None = None) -> tuple[str | None, Any]:
    """Links this browser to the customer's profile (nudge.visitor.linking). Returns (hash, None)
    when the profile must record a new link (the caller folds it into its one profile write).
    A page waits at most `budget` seconds for the lookup; a slower one is finished after the
    response: (None, task), the task's result being the hash to record if this browser became the
    owner (a browser that must adopt another's visitor id does so on a later page, whose cookie can
    carry it)."""
    hashed = app.identity_of(user)
    if hashed is None:
        return None, None
    if already_linked(session, hashed):  # no KV traffic, but on a visit's first page
        if session.is_new:  # the customer is still known for follow-ups
            _remember_contact(env, ctx, app, session, user)
        return None, None
    kv = Kv(env)
    lookup = started(kv.get(identity_key(hashed)))
    try:
        owner = await (asyncio.wait_for(asyncio.shield(lookup), budget) if budget else lookup)
    except TimeoutError:
        log.warning("nudge: identity lookup slower than %s s; finished after the response", budget)
        return None, started(_link_late(env, session.visitor_id, hashed, lookup))
    except WorkersError as exc:
        log.error("nudge: identity lookup failed: %s", exc)
        return None, None
    first_owner = adopt_link(session, hashed, owner)
    if session.identity is not None:
        _remember_contact(env, ctx, app, session, user)
    if not first_owner:
        return None, None
    ctx.waitUntil(kv.keep(identity_key(hashed), session.visitor_id.encode("ascii")))
    return hashed, None


def _remember_contact(env: Any, ctx: Any, app: Engine, session: Session, user: str) -> None:
    """The customer's own id, kept only when follow-ups are configured (their webhook names it)."""
    if app.followups_enabled:
        ctx.waitUntil(Kv(env).keep(contact_key(session.visitor_id), user.strip().encode(), CONTACT_TTL))


async def no_link() -> tuple[str | None, Any]:
    return None, None


async def _link_late(env: Any, visitor: str, hashed: str, lookup: Awaitable[bytes | None]) -> str | None:
    """The end of an identity lookup a page did not wait for: a customer nobody owns yet is linked
    to this browser (its next page finds the link and notes it in the cookie)."""
    try:
        owner = await lookup
    except WorkersError as exc:
        log.error("nudge: identity lookup failed: %s", exc)
        return None
    if owner:
        return None
    await Kv(env).keep(identity_key(hashed), visitor.encode("ascii"))
    return hashed


async def write_profile(env: Any, app: Engine, session: Session, now: int, write: Profile | None,
                        new_visit: bool, pending: Any, linked: str | None, late_link: Any) -> None:
    """A page's one profile write, after the response (KV: one write per second per key, last one
    wins). `write` is what the page built from the stored profile it read in time. On a visit's
    first page whose read did not land (slow or failing KV, or an identity link that adopted
    another visitor id), the visit is merged into what KV holds: the read still running
    (`pending`) or a new one. If that cannot be read, nothing is written: one visit goes uncounted
    rather than a stored profile (orders, history, identity link) being replaced by one that knows
    only this visit. `linked` / `late_link`: an identity link to record in the profile."""
    if late_link is not None:
        linked = await late_link or linked
    kv = Kv(env)
    key = profile_key(session.visitor_id)
    if write is None and new_visit:
        try:
            stored = await pending if pending is not None else await kv.get(key)
        except (WorkersError, TypeError, ValueError) as exc:
            log.error("nudge: profile not written: %s could not be read (%s)", key, exc)
            return
        write = app.visit_profile(decode_profile(stored), session, now)
    if write is not None:
        written = encode_profile(with_link(write, linked))
        await kv.keep(key, written)
        recent_profiles.keep(session.visitor_id, written)
    elif linked:
        await record_key_event(env, session.visitor_id, KeyEvent(), now, identity=linked)


async def record_key_event(env: Any, visitor: str, event: KeyEvent, now: int, identity: str | None = None) -> None:
    """Merges a purchase, redemption, identity link or a visit begun without a page into the KV
    profile (read, merge, write; in the background)."""
    kv = Kv(env)
    try:
        stored = decode_profile(await kv.get(profile_key(visitor)))
    except WorkersError as exc:
        log.error("nudge: profile read failed: %s", exc)
        return
    written = encode_profile(profile_after(stored, event, now, identity))
    await kv.keep(profile_key(visitor), written)
    recent_profiles.keep(visitor, written)


async def profile_writes(env: Any, visitor: str, write: Any, bought: KeyEvent | None, now: int) -> None:
    """The page's profile write, then the confirmed order's merge (each merges into what KV holds)."""
    if write is not None:
        await write
    if bought is not None:
        await record_key_event(env, visitor, bought, now)


async def order_unseen(env: Any, app: Engine, order: ShopOrder | None) -> bool:
    """Whether KV has not yet counted this order id (a best-effort guard: KV is eventually
    consistent, see the README's threat model). An unreadable guard counts the order: the session
    still counts each order id once per visit."""
    if order is None:
        return False
    try:
        seen = await asyncio.wait_for(Kv(env).get(app.order_key(order.id)), ORDER_GUARD_BUDGET)
    except (TimeoutError, WorkersError) as exc:
        log.warning("nudge: order guard read skipped: %r", exc)
        return True
    return seen is None


async def mark_order(env: Any, app: Engine, order: ShopOrder) -> None:
    """The order id's once-ever mark (no expiry: an order id counts once, ever)."""
    try:
        await Kv(env).put_forever(app.order_key(order.id), b"1")
    except WorkersError as exc:
        log.error("nudge: order guard write failed: %s", exc)
