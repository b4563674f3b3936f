"""nudge's own endpoints under /_nudge/: a table of paths to handlers. Each handler reads what it
needs (cookies, the body, KV, the ledger), asks the Engine, and returns a Reply; the state-changing
ones first refuse what another origin may have sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs

from nudge.engine import (
    BEACON_PATH,
    CLIENT_PATH,
    EXPLAIN_PATH,
    FORGET_PATH,
    HEALTH_PATH,
    PREVIEW_PATH,
    REDEEM_PATH,
    STYLE_PATH,
    Engine,
    KeyEvent,
    Reply,
)
from nudge.followups.dispatch import is_code_shaped
from nudge.followups.messages import IssuedCode
from nudge.guard import cross_origin_refusal
from nudge.kv_keys import code_key, identity_key, profile_key
from nudge.runtime.bindings import Kv, WorkersError, ledger_redeem, record
from nudge.runtime.http import headers_of, page_request, read_body, reply_response, secure, site, str_or_none
from nudge.runtime.isolate import memory, recent_profiles
from nudge.runtime.profiles import link_identity, record_key_event
from nudge.runtime.queue import erase_followups, follow_up
from nudge.signing import BadData
from nudge.visitor.cookies import parse_cookies
from nudge.visitor.linking import owns_link
from nudge.visitor.privacy import PRIVACY_HEADERS
from nudge.visitor.profile import decode_profile
from nudge.visitor.session import COOKIE_NAME, Session

__all__ = ["ENDPOINTS", "endpoint"]

log = logging.getLogger("nudge")

MAX_BEACON_BODY = 8 * 1024


@dataclass
class _Call:
    """One request to an endpoint, read once."""

    js_req: Any
    env: Any
    ctx: Any
    parts: SplitResult
    app: Engine
    now: int
    cookies: dict[str, str]

    @property
    def secure(self) -> bool:
        return secure(self.parts)

    def status(self) -> str:
        """Engine.visitor_status of this browser ("tracked" only with consent, and not a bot)."""
        return self.app.visitor_status(headers_of(self.js_req, PRIVACY_HEADERS), self.cookies)


Handler = Callable[[_Call], Awaitable[Reply]]


async def endpoint(js_req: Any, env: Any, ctx: Any, parts: SplitResult, app: Engine | None, now: int) -> Any:
    """The JS Response of the endpoint at parts.path (404 for an unknown one, 503 when nudge is not
    configured)."""
    if app is None:
        return reply_response(Reply(503, '{"error": "nudge is not configured"}'))
    handler = ENDPOINTS.get(parts.path)
    if handler is None:
        return reply_response(Reply(404, '{"error": "not found"}'))
    call = _Call(js_req, env, ctx, parts, app, now, parse_cookies(js_req.headers.get("cookie")))
    return reply_response(await handler(call))


def _same_origin(handler: Handler) -> Handler:
    """The handler, behind a 403 for a state-changing request another origin may have sent
    (guard.cross_origin_refusal: CSRF, or a page on another subdomain or port): nothing is then
    read, stored, set or erased."""

    async def guarded(call: _Call) -> Reply:
        js_req = call.js_req
        refusal = cross_origin_refusal(str(js_req.method), str_or_none(js_req.headers.get("sec-fetch-site")),
                                       str_or_none(js_req.headers.get("origin")), site(call.parts))
        if refusal is None:
            return await handler(call)
        log.warning("nudge: refused %s %s: %s", js_req.method, call.parts.path, refusal)
        return Reply(403, f"Forbidden: {refusal}\n", "text/plain; charset=utf-8", [("Cache-Control", "no-store")])

    return guarded


async def _client(call: _Call) -> Reply:
    return call.app.client()


async def _style(call: _Call) -> Reply:
    return call.app.stylesheet()


async def _health(call: _Call) -> Reply:
    return call.app.health()


async def _preview(call: _Call) -> Reply:
    return call.app.start_preview(call.parts.query, call.now, call.secure)


async def _explain(call: _Call) -> Reply:
    """The explain page for this browser: its session and profile as the page would see them."""
    app, now, status = call.app, call.now, call.status()
    session = app.load_session(call.cookies, now) if status == "tracked" else Session.fresh(now)
    profile = None
    if status == "tracked" and COOKIE_NAME in call.cookies:
        try:
            profile = decode_profile(await Kv(call.env).get(profile_key(session.visitor_id)))
        except WorkersError as exc:
            log.warning("nudge: explain could not read the profile: %s", exc)
    return app.explain(memory, call.parts.query, session, profile, now, status,
                       page_request(call.js_req, call.parts).context)


async def _forget(call: _Call) -> Reply:
    """Erases the visitor's KV profile (awaited, so the answer is true) and their cookies."""
    method, cookies = str(call.js_req.method), call.cookies
    visitor = None
    if method == "POST" and COOKIE_NAME in cookies:
        try:
            visitor = call.app.codec.decode(cookies[COOKIE_NAME]).visitor_id
        except BadData:
            visitor = None
    erased = identity = False
    if visitor is not None:
        try:
            erased, identity = await _erase_profile(Kv(call.env), visitor)
        except WorkersError as exc:  # say so, and keep the cookies: a retry needs the visitor id
            log.error("nudge: forget failed: %s", exc)
            return Reply(503, '{"error": "the stored profile could not be erased just now; try again"}',
                         headers=[("retry-after", "60")])
        await erase_followups(call.env, visitor)
    return call.app.forget(method, cookies, visitor, erased, call.secure, identity)


async def _erase_profile(kv: Kv, visitor: str) -> tuple[bool, bool]:
    """Deletes the visitor's profile, and its identity link while the link is this visitor's:
    (a profile was stored, a link was erased)."""
    key = profile_key(visitor)
    profile = decode_profile(await kv.get(key))
    identity = False
    if profile is not None and profile.identity:
        if owns_link(await kv.get(identity_key(profile.identity)), visitor):
            await kv.delete(identity_key(profile.identity))
            identity = True
    await kv.delete(key)
    recent_profiles.forget(visitor)
    return profile is not None, identity


async def _redeem(call: _Call) -> Reply:
    """An offer link (?rule=...&t=...) or a follow-up's single-use code (?code=...): its details in
    KV, its use recorded once in the rule's ledger."""
    app, now, query = call.app, call.now, call.parts.query
    if call.status() != "tracked":
        return app.redeem(memory, "", Session.fresh(now), now, call.secure)[0]
    session = app.load_session(call.cookies, now)
    active = app.active_offer(call.cookies, now)
    codes = parse_qs(query).get("code")
    code = codes[0] if codes else None
    if code is not None:
        issued = IssuedCode.decode(await Kv(call.env).get(code_key(code))) if is_code_shaped(code) else None
        answer = await ledger_redeem(call.env, app.code_claim(issued, now, active))
        reply, event = app.redeem_code(issued, session, now, call.secure, active, answer)
    else:
        answer = await ledger_redeem(call.env, app.redeem_claim(query, session, now, active))
        reply, event = app.redeem(memory, query, session, now, call.secure, active, answer)
    return _counted(call, session, reply, event, None)


async def _beacon(call: _Call) -> Reply:
    """The client's beacon: page views, dwell, clicks and the shop's signed identity token."""
    app, now = call.app, call.now
    if call.status() != "tracked":  # accepted and dropped: nothing is stored without consent
        return Reply(204)
    session = app.load_session(call.cookies, now)
    body = await read_body(call.js_req, MAX_BEACON_BODY)
    if body is None:
        return Reply(413, '{"error": "body larger than 8192 bytes"}')
    beacon = app.read_beacon(str(call.js_req.method), body, call.js_req.headers.get("content-type"))
    if isinstance(beacon, Reply):
        return beacon
    linked: str | None = None
    for item in beacon.events:  # identity only from the shop: a token its server signed (a bare
        user = app.identity_from_token(item.token, now) if item.type == "identify" and item.token else None
        if user is not None:  # `user` the browser states is ignored)
            linked = (await link_identity(call.env, call.ctx, app, session, user, now))[0] or linked
    reply, event = app.apply_beacon(memory, beacon, session, now, call.secure, site(call.parts))
    follow_up(call.env, call.ctx, event.followups, now)
    return _counted(call, session, reply, event, linked)


def _counted(call: _Call, session: Session, reply: Reply, event: KeyEvent, linked: str | None) -> Reply:
    """The reply, once its key event (and identity link) is merged into the profile and its
    measurement events recorded, both after the response."""
    if event or linked:  # one read-merge-write of the profile per request
        call.ctx.waitUntil(record_key_event(call.env, session.visitor_id, event, call.now, identity=linked))
    record(call.env, call.ctx, call.app.rules_version, event.events, call.now)
    return reply


ENDPOINTS: dict[str, Handler] = {
    CLIENT_PATH: _client,
    STYLE_PATH: _style,
    HEALTH_PATH: _health,
    BEACON_PATH: _same_origin(_beacon),
    REDEEM_PATH: _same_origin(_redeem),
    FORGET_PATH: _same_origin(_forget),
    EXPLAIN_PATH: _same_origin(_explain),
    PREVIEW_PATH: _same_origin(_preview),
}
