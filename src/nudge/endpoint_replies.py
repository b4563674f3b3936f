"""The replies of nudge's own endpoints that serve people rather than a visit: /_nudge/explain (why
each rule did or did not show), /_nudge/preview (show one rule in this browser), /_nudge/forget
(erase me), /_nudge/health and the two static assets.

Apart from the engine because none of them is a decision about a shopper's page: they are checked
tokens, an erasure receipt and files. The runtime does their I/O (the KV erase, the profile read).
"""

from __future__ import annotations

import copy
import dataclasses
import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from nudge.delivery import render
from nudge.isolate_memory import IsolateMemory
from nudge.reply import IMMUTABLE, NO_STORE, Reply, json_reply, redirect
from nudge.rules.explain import explain_html, explain_json, verdicts
from nudge.rules.preview import PREVIEW_COOKIE
from nudge.visitor.attributes import RequestContext
from nudge.visitor.cart_truth import cart_explained
from nudge.visitor.cookies import OUR_COOKIES, set_cookie
from nudge.visitor.pages import same_site_path
from nudge.visitor.profile import Profile
from nudge.visitor.session import Session
from nudge.visitor.tracking import record_page_view

if TYPE_CHECKING:
    from nudge.engine import Engine


def forget(engine: Engine, method: str, cookies: dict[str, str], visitor: str | None, profile_erased: bool,
           secure: bool, identity_erased: bool = False) -> Reply:
    """POST /_nudge/forget: the answer after the edge erased the KV profile; erases the cookies."""
    if method != "POST":
        return json_reply(405, {"error": "use POST (a link must not erase data)"}, [("Allow", "POST")])
    erased = {
        "cookies": [name for name in OUR_COOKIES if name in cookies],
        "visitor": visitor,
        "profile": profile_erased,
        "identity_link": identity_erased,
    }
    headers = [("Set-Cookie", c) for c in engine.erase_cookies(cookies, secure)]
    return json_reply(200, {"erased": erased}, headers + [NO_STORE])


def explain(engine: Engine, memory: IsolateMemory, query: str, session: Session, profile: Profile | None, now: int,
            status: str, context: RequestContext) -> Reply:
    """GET /_nudge/explain?token=T&path=/some/page[&format=json]: for this browser, its
    attributes and every rule's outcome on that page, with the reason. Reads, never writes:
    the page view is simulated on a copy of the session."""
    params = parse_qs(query)
    token = (params.get("token") or [""])[0]
    if not engine.explain_token:
        return json_reply(404, {"error": "explain is off: set NUDGE_EXPLAIN_TOKEN"})
    if not hmac.compare_digest(token.encode(), engine.explain_token.encode()):
        return json_reply(403, {"error": "wrong or missing token"}, [NO_STORE])
    path = (params.get("path") or ["/"])[0]
    if not same_site_path(path):
        return json_reply(400, {"error": "path must be a same-site path like /collections/sneakers"})
    # Read as a page request is: the path is classified, the query only feeds searches and UTM.
    page_path, _, page_query = path.partition("?")
    trial = copy.deepcopy(session)
    page = engine.ruleset.classifier.classify(page_path)
    record_page_view(trial, page, now, page_query)
    why: dict[str, str] = {}
    context = dataclasses.replace(context, path=page_path)
    attributes, decided = engine.decide(trial, page, profile, now, context, memory.budgets.spent_today(now), why)
    items = verdicts(engine.ruleset, page.type, decided, why, attributes)
    headers = [NO_STORE, ("X-Robots-Tag", "noindex")]
    cart = cart_explained(session, len(engine.cart.routes) if engine.cart else 0,
                          engine.cart.truth.url if engine.cart and engine.cart.truth else None)
    if (params.get("format") or [""])[0] == "json":
        return Reply(200, explain_json(status, path, attributes, items, cart), headers=headers)
    return Reply(200, explain_html(status, path, attributes, items, cart), "text/html; charset=utf-8", headers)


def start_preview(engine: Engine, query: str, now: int, secure: bool) -> Reply:
    """GET /_nudge/preview?t=TOKEN[&path=/x]: this browser previews the rule until the link
    expires; `?end=1` stops previewing."""
    params = parse_qs(query)
    if params.get("end"):
        return redirect("/", set_cookie(PREVIEW_COOKIE, "", max_age=0, secure=secure))
    token = (params.get("t") or [""])[0]
    preview = engine.previews.verify(token, now)
    if preview is None or engine.ruleset.rule(preview.rule) is None:
        error = "this preview link is invalid or has expired: mint a new one with `nudge preview`"
        return json_reply(403, {"error": error}, [NO_STORE])
    path = (params.get("path") or ["/"])[0]
    location = path if same_site_path(path) else "/"
    return redirect(location, set_cookie(PREVIEW_COOKIE, token, max_age=preview.expires - now, secure=secure))


def health(engine: Engine) -> Reply:
    return json_reply(200, {"ok": True, "rules": len(engine.ruleset.rules), "rules_version": engine.rules_version},
                      [NO_STORE])


def stylesheet() -> Reply:
    return Reply(200, render.CSS, content_type="text/css; charset=utf-8", headers=[IMMUTABLE])


def client_script(client_js: str) -> Reply:
    return Reply(200, client_js, content_type="text/javascript; charset=utf-8", headers=[IMMUTABLE])
