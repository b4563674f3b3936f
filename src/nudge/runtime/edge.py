"""The boundary between nudge and the Workers runtime: the only module that imports `js`,
`pyodide` or `workers`.

It converts JS values to plain Python at the border, does the I/O (origin fetch, KV, HTMLRewriter)
and asks `nudge.app` what to do. It fails open: if nudge's own logic fails, the shopper gets the
origin's response unchanged and the error is logged; origin errors pass through as they are. An
exception that escapes nudge gets the origin's page through `_fallback` (the request stripped of
nudge's cookies and headers), never through the runtime's passThroughOnException.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import js
from pyodide.ffi import JsException, create_proxy, to_js

try:
    from pyodide.ffi import jsnull  # JS null, where the runtime keeps it apart from undefined
except ImportError:  # older Pyodide: null converts to None
    jsnull = None

from nudge.engine import (
    BEACON_PATH,
    CLIENT_PATH,
    FORGET_PATH,
    HEALTH_PATH,
    PREFIX,
    REDEEM_PATH,
    STYLE_PATH,
    EXPLAIN_PATH,
    PREVIEW_PATH,
    Engine,
    KeyEvent,
    PagePlan,
    PageRequest,
    Reply,
)
from nudge.visitor.attributes import RequestContext
from nudge.visitor.cookies import is_local_http, parse_cookies, without_our_cookies
from nudge.delivery.csp import plan_injection
from nudge.guard import cross_origin_refusal, forwarded_for, is_nudge_header, location_value, shareable_page
from nudge.delivery.exclusions import is_excluded
from nudge.rules.bucketing import in_holdout
from nudge.events import Event
from nudge.kv_keys import (CATALOG_TTL, CONTACT_TTL, POINTER_KEY, PROFILE_TTL, blob_key, code_key, contact_key,
                           identity_key, ledger_name, pending_key, pending_prefix, product_key, profile_key)
from nudge.ledger import LEDGER_BINDING, UNAVAILABLE, Ledger, LedgerClaim, verdict
from nudge.offers import OFFER_APPLIED_HEADER, Redeemed
from nudge.visitor.pages import own_location
from nudge.rules.preview import Preview
from nudge.delivery import render
from nudge.visitor.profile import Profile, decode_profile, encode_profile, merged_profile
from nudge.rules.load import RuleError, load_ruleset
from nudge.rules.blob import load_blob, rules_version
from nudge.visitor.cart import MAX_CART_BODY
from nudge.visitor.cart_routes import RouteMatch, match_route
from nudge.visitor.cart_truth import CART_HEADER, MAX_TRUTH_BODY, apply_cart_truth, cart_seen, cookie_for_truth, \
    parse_cart_json
from nudge.visitor.learned_catalog import decode_facts, encode_facts
from nudge.followups.messages import FollowUp, IssuedCode, MessageError, Pending
from nudge.followups.planning import Before, FollowUpPlan, skip_reason
from nudge.followups.webhook import (SIGNATURE_HEADER, WEBHOOK_TIMEOUT, backoff, delivery_outcome, issue_code, sign,
                                     webhook_url_problem)
from nudge.visitor.identity import IDENTITY_HEADER, short
from nudge.visitor.purchases import ORDER_HEADER, ShopOrder, parse_order_header
from nudge.visitor.product_facts import META_KEYS, ProductFactsCollector
from nudge.visitor.privacy import ConsentPolicy
from nudge.visitor.session import COOKIE_NAME, Session
from nudge.signing import BadData, parse_secrets
from nudge.timing import OwnTime

log = logging.getLogger("nudge")

LEDGER_TIMEOUT = 5  # seconds a redemption waits for the ledger before refusing (fail closed)
KV_BUDGET = 0.05  # seconds we wait for the profile once the origin has answered
CART_TRUTH_BUDGET = 2.0  # seconds for the shop's cart JSON ([cart] truth_url) after a cart change
ORDER_GUARD_BUDGET = 0.5  # seconds a confirmation page waits for its order id's once-ever KV mark
ORIGIN_TIMEOUT = 100  # seconds to wait for the origin's response headers (NUDGE_ORIGIN_TIMEOUT_SECONDS)
RULES_REFRESH = 30  # seconds between looks for newly published rules (NUDGE_RULES_REFRESH_SECONDS)
FIRST_RULES_BUDGET = 0.2  # seconds an isolate's first request waits for the published rules
MAX_BEACON_BODY = 8 * 1024
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,12}-[A-Z2-7]{10}")  # a follow-up's single-use code
_HOP_HEADERS = ("host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade")

_DECODED_ENCODINGS = ("", "identity", "gzip", "br")  # bodies the runtime's fetch hands over decoded
# Charsets (WHATWG labels, plus UTF-32/UTF-7) in which "<" is not the byte it is in ASCII, or in
# which bytes we insert could change the meaning of what follows: HTMLRewriter cannot parse such a
# page and nothing can be inserted into it safely, so it passes through byte-identical.
_NOT_ASCII_COMPATIBLE = frozenset((
    "utf-16", "utf-16le", "utf-16be", "unicode", "unicodefeff", "unicodefffe", "csunicode", "ucs-2",
    "iso-10646-ucs-2", "utf-32", "utf-32le", "utf-32be", "utf-7", "iso-2022-jp", "csiso2022jp",
    "iso-2022-kr", "csiso2022kr", "iso-2022-cn", "iso-2022-cn-ext", "hz-gb-2312", "replacement",
))
_PRIVACY_HEADERS = ("user-agent", "sec-purpose", "purpose", "x-purpose", "x-moz", "sec-gpc", "dnt")

_app: tuple[tuple[str, ...], Engine] | None = None


class ConfigError(RuntimeError):
    """The Worker is deployed without what it needs (e.g. no NUDGE_SECRET)."""


def _app_for(env: Any) -> Engine:
    """The per-isolate Engine (rule set parsed once; rebuilt only if the secret changes)."""
    global _app
    names = ("NUDGE_SECRET", "NUDGE_CONSENT", "NUDGE_CONSENT_COOKIE", "NUDGE_EDGE_CART", "NUDGE_SHADOW",
             "NUDGE_EXPLAIN_TOKEN", "NUDGE_WEBHOOK_URL", "NUDGE_WEBHOOK_SECRET", "NUDGE_SHOP_SECRET")
    config = tuple(str(getattr(env, name, "") or "") for name in names)
    if _app is None or _app[0] != config:
        secret, consent_mode, consent_cookie, edge_cart, shadow, explain_token, webhook_url, webhook_secret, \
            shop_secret = config
        secrets = parse_secrets(secret)
        if not secrets:
            raise ConfigError("NUDGE_SECRET is not set (`wrangler secret put NUDGE_SECRET`; locally .dev.vars)")
        try:
            consent = ConsentPolicy.from_config(consent_mode or None, consent_cookie or None)
        except ValueError as exc:
            raise ConfigError(f"NUDGE_CONSENT: {exc}") from exc
        from nudge import _bundle

        for name, value in (("NUDGE_EDGE_CART", edge_cart), ("NUDGE_SHADOW", shadow)):
            if value not in ("", "on", "off"):
                raise ConfigError(f"{name} must be 'on' or 'off', not {value!r}")
        ruleset = load_ruleset(_bundle.RULE_FILES)
        bundled = "bundled:" + rules_version(_bundle.RULE_FILES)
        app = Engine(ruleset, secrets, _bundle.CLIENT_JS, consent, edge_cart != "off", bundled, shadow == "on",
                      explain_token)
        app.followups_enabled = _followups_configured(env, webhook_url, webhook_secret)
        app.shop_secret = shop_secret.encode("utf-8") or None
        _app = (config, app)
    return _app[1]


def _followups_configured(env: Any, url: str, secret: str) -> bool:
    """Follow-ups need the queue binding, a usable webhook URL and its signing secret; anything
    less turns them off with one clear log line (pages are unaffected)."""
    if not url:
        return False
    problem = webhook_url_problem(url) or ("" if secret else "NUDGE_WEBHOOK_SECRET is not set")
    if not problem and _absent(getattr(env, "NUDGE_FOLLOWUPS", None)):
        problem = "no NUDGE_FOLLOWUPS queue binding (see wrangler.toml)"
    if problem:
        log.error("nudge: follow-ups are off: %s", problem)
    return not problem


async def _maybe_refresh_rules(app: Engine, env: Any, ctx: Any) -> None:
    """At most every NUDGE_RULES_REFRESH_SECONDS (default 30), look for newly published rules in
    the background; such a request keeps the rule set it has. An isolate's first request waits up
    to FIRST_RULES_BUDGET for them: a cold isolate would otherwise decide (and count exposures) with
    the bundled rules, which are older than what was published since the deploy."""
    if _rules_due(app, env):
        first = app.rules_checked == 0.0
        app.rules_checked = time.monotonic()
        refresh = _started(_refresh_rules(env, app))
        if first:
            try:
                await asyncio.wait_for(asyncio.shield(refresh), FIRST_RULES_BUDGET)
            except asyncio.TimeoutError:
                log.warning("nudge: published rules slower than %s s; this request uses %s", FIRST_RULES_BUDGET,
                            app.rules_version)
            except Exception:  # the page goes on with the rules it has
                log.exception("nudge: loading the published rules failed")
        ctx.waitUntil(refresh)
        ctx.waitUntil(_refresh_budgets(env, app))


def _rules_due(app: Engine, env: Any) -> bool:
    """Time to look for newly published rules: the isolate never has, or not for
    NUDGE_RULES_REFRESH_SECONDS (default 30)."""
    every = _env_int(env, "NUDGE_RULES_REFRESH_SECONDS", 1, 3600, RULES_REFRESH)
    return app.rules_checked == 0.0 or time.monotonic() - app.rules_checked >= every


async def _refresh_rules(env: Any, app: Engine) -> None:
    """Loads the published rule set the pointer names, if it is new; keeps the current one (the
    bundled set to start with) when KV is empty, unreachable or holds something unusable."""
    try:
        pointer = await _kv_get(env, POINTER_KEY)
        if not pointer:
            return
        version = pointer.decode("ascii").strip()
        if version == app.rules_version:
            return
        blob = await _kv_get(env, blob_key(version))
        if blob is None:
            raise RuleError(POINTER_KEY, "-", f"names {version}, which is not in KV")
        loaded, ruleset = load_blob(blob)
        app.use_ruleset(ruleset, loaded)
        log.warning("nudge: now serving published rules %s", loaded)
    except (JsException, BadData, RuleError, UnicodeDecodeError) as exc:
        log.error("nudge: published rules unusable (%s); keeping %s", exc, app.rules_version)


def _headers(js_req: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The named headers (lower-case names) of a request or response that are present."""
    out = {}
    for name in names:
        value = js_req.headers.get(name)
        if isinstance(value, str):
            out[name] = value
    return out


def _env_int(env: Any, name: str, low: int, high: int, default: int) -> int:
    """A whole-number setting from the Worker's vars; the default when unset or out of range."""
    raw = str(getattr(env, name, "") or "")
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else default


def _opts(**kwargs: Any) -> Any:
    return to_js(kwargs, dict_converter=js.Object.fromEntries)


_html_options: Any = None


def _html() -> Any:
    """HTMLRewriter's `{html: true}`, made once per isolate on first use (not at import: JS
    objects must not be held from the top level, which Workers snapshot)."""
    global _html_options
    if _html_options is None:
        _html_options = _opts(html=True)
    return _html_options


async def handle(request: Any, env: Any, ctx: Any) -> Any:
    """The Worker's fetch handler. Returns a JS Response (the runtime passes it through as is;
    wrapping constructed responses in `workers.Response` trips a Pyodide 0.29 bug). Fails open
    without leaking: an exception that escapes nudge gets the origin's page through `_fallback`,
    never the runtime's passThroughOnException (it forwards the original request: nudge's cookies
    and any X-Nudge-* header the browser sent would reach the origin)."""
    clock = OwnTime()  # nudge's own time on this request
    js_req = getattr(request, "js_object", request)  # workers.Request or a JS Request
    parts = urlsplit(str(js_req.url))
    try:
        app = _app_or_none(env)
        if app is not None:
            await clock.waiting(_maybe_refresh_rules(app, env, ctx))  # waits only on an isolate's first request
        if parts.path.startswith(PREFIX):
            answer = await _endpoint(js_req, env, ctx, parts, app)
            await _drain(js_req)
            return answer
        if _local(env, "NUDGE_LOCAL_CRASH") == "pages":  # local-only: the fail-open path, for the tests
            raise RuntimeError("NUDGE_LOCAL_CRASH: nudge fails on this page")
        return await _proxy(js_req, env, ctx, parts, app, clock)
    except Exception:
        log.exception("nudge: failed on %s %s; answering through the fallback", js_req.method, parts.path)
        return await _fallback(js_req, env, parts)


async def _fallback(js_req: Any, env: Any, parts: Any) -> Any:
    """What the shopper gets when nudge itself failed: the origin's answer to the request stripped
    of nudge's cookies and X-Nudge-* headers (as every forwarded request is). nudge's own endpoints
    are not the origin's: they answer 500. A request whose body nudge already sent on (or read)
    cannot be sent again: 502, rather than a POST the origin might apply twice."""
    if parts.path.startswith(PREFIX):
        return _edge_error(500, "Internal Server Error: nudge could not answer\n")
    try:
        if bool(js_req.bodyUsed):
            return _edge_error(502, "Bad Gateway: the request could not be passed on\n")
        target = str(env.ORIGIN_URL).rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        return await js.fetch(await _origin_request(js_req, target, parts, {}))
    except Exception:
        log.exception("nudge: the fallback could not reach the origin")
        return _edge_error(502, "Bad Gateway: the shop could not be reached\n")


_refused: set[str] = set()  # why nudge could not start, each said once per isolate


def _app_or_none(env: Any) -> Engine | None:
    """The isolate's Engine, or None when nudge cannot run: then every response is the origin's,
    untouched, and one log line says why (never a default secret: no secret, no personalization)."""
    try:
        return _app_for(env)
    except ConfigError as exc:
        if str(exc) not in _refused:
            _refused.add(str(exc))
            log.error("nudge: %s; personalization is off, every request passes through to the origin", exc)
    except Exception as exc:  # fail open: e.g. an unusable bundled rule set
        if repr(exc) not in _refused:
            _refused.add(repr(exc))
            log.exception("nudge: cannot start; passing requests through")
    return None


# -- proxying pages -----------------------------------------------------------------------------


@dataclass
class _Visit:
    """What nudge knows about the request before the origin answers."""

    app: Engine | None = None  # None: pass the origin's response through untouched
    status: str = "untracked"  # "tracked", "untracked" or "automated" (Engine.visitor_status)
    session: Session | None = None
    offer: Redeemed | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    preview: Preview | None = None  # a marketer's preview: that rule at once, nothing stored

    @property
    def tracked(self) -> bool:
        return self.app is not None and self.session is not None and self.status == "tracked"


def _read_visitor(js_req: Any, app: Engine | None, now: int) -> _Visit:
    if app is None:
        return _Visit()
    try:
        cookies = parse_cookies(js_req.headers.get("cookie"))
        status = app.visitor_status(_headers(js_req, _PRIVACY_HEADERS), cookies)
        if status == "automated":  # bots and prefetches get the origin's page untouched
            return _Visit(status=status)
        preview = app.preview_of(cookies, now)
        if preview is not None:
            return _Visit(app, "preview", Session.fresh(now), None, cookies, preview)
        if status != "tracked":  # a throwaway session: never stored, never sent
            return _Visit(app, status, Session.fresh(now), None, cookies)
        return _Visit(app, status, app.load_session(cookies, now), app.active_offer(cookies, now), cookies)
    except Exception:  # fail open: nudge's own failure must never cost the shopper the page
        log.exception("nudge: reading the visitor failed; passing the page through")
        return _Visit()


def _started(work: Any) -> Any:
    """Starts `work` now, to be awaited later (the origin fetch and KV reads run side by side).
    Pyodide's event loop reports a task that fails before anyone awaits it as an unhandled exception
    (with a traceback, e.g. a KV read that throws while the origin is still answering); the done
    callback retrieves the failure, which the code that awaits the task then handles."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(task: Any) -> None:
    if not task.cancelled():
        task.exception()


async def _within_budget(task: Any, what: str) -> tuple[bytes | None, bool]:
    """(value, landed) of a KV read started alongside the origin fetch: landed when it answered
    within KV_BUDGET of the origin's response (so KV has the origin's whole time plus 50 ms). A
    slower read is not cancelled (a write that must merge into the real value can still await it);
    a failed one is logged."""
    if task is None:
        return None, False
    try:
        result: bytes | None = await asyncio.wait_for(asyncio.shield(task), KV_BUDGET)
        return result, True
    except (asyncio.TimeoutError, JsException, TypeError, ValueError) as exc:
        log.warning("nudge: %s read skipped: %r", what, exc)
        return None, False


def _cancel(*tasks: Any) -> None:
    for task in tasks:
        if task is not None:
            task.cancel()


async def _proxy(js_req: Any, env: Any, ctx: Any, parts: Any, configured: Engine | None,
                 clock: OwnTime) -> Any:
    now = int(time.time())
    origin = str(env.ORIGIN_URL).rstrip("/")
    if configured is not None and is_excluded(parts.path, configured.ruleset.settings.exclude):
        configured = None  # [site] exclude (the shop's admin): passed through as if nudge were not there
    visit = _read_visitor(js_req, configured, now)
    app, session = visit.app, visit.session
    if visit.status == "untracked" and app is not None and app.followups_enabled and COOKIE_NAME in visit.cookies:
        _withdrawn(env, ctx, app, visit.cookies)
    extra = app.origin_headers(visit.offer) if app is not None else {}
    # Start the origin fetch and the KV reads together; none waits for another.
    action = match_route(app.cart, str(js_req.method), parts.path, parts.query) if visit.tracked and app else None
    cart_body = _started(_read_body(js_req.clone(), MAX_CART_BODY)) if action and action.method == "POST" else None
    target = origin + parts.path + (f"?{parts.query}" if parts.query else "")
    cache_key = target if app is not None and _edge_cacheable(js_req, env, extra) else None
    abort = js.AbortController.new()
    request = await clock.waiting(_origin_request(js_req, target, parts, extra, abort.signal))  # reads a body
    origin_task = _started(_fetch_origin(request, cache_key, ctx))
    profile_task = facts_task = None
    slug, facts = None, None
    read_for = profile_key(session.visitor_id) if session is not None else ""
    if visit.tracked and app is not None and session is not None:
        profile_task = _started(_kv_get(env, read_for))
        early = app.ruleset.classifier.classify(parts.path)
        if early.type == "product" and early.product and not early.category:
            slug = early.product  # the category must come from facts learned from the page
            facts = app.catalog.get(slug)
            if facts is None:
                facts_task = _started(_kv_get(env, product_key(slug)))
    timeout = _origin_timeout(env)
    try:
        origin_resp = await clock.waiting(asyncio.wait_for(origin_task, timeout))
    except asyncio.TimeoutError:
        abort.abort()  # the origin may still answer: nobody is listening any more
        log.error("nudge: origin did not answer within %s s: %s %s", timeout, js_req.method, parts.path)
        _cancel(profile_task, facts_task, cart_body)
        return _edge_error(504, "Gateway Timeout: the shop did not answer in time\n")
    except JsException as exc:  # unreachable, or a body the runtime cannot decode (_decodable)
        log.error("nudge: origin fetch failed: %s", exc)
        _cancel(profile_task, facts_task, cart_body)
        return _edge_error(502, "Bad Gateway: the shop could not be reached\n")
    origin_resp = _relocated(origin_resp, origin, parts)
    origin_resp, user, order_header, cart_header = _shops_word(origin_resp)
    cart_header = cart_header if visit.tracked else None
    if app is None or session is None or not _is_page(js_req, origin_resp):
        _cancel(profile_task, facts_task)
        if (action or cart_header) and app is not None and session is not None:
            return await _cart_seen(app, env, ctx, js_req, parts, origin, session, action, cart_body, cart_header,
                                    origin_resp, now)
        return origin_resp
    # The identity lookup (the origin named its customer) and the profile read share one budget.
    link = _link_identity(env, ctx, app, session, user, now, KV_BUDGET) \
        if user is not None and visit.tracked else _no_link()
    order = parse_order_header(order_header) if visit.tracked else None
    (linked, late_link), (stored, landed), order_new = await clock.waiting(
        asyncio.gather(link, _within_budget(profile_task, "profile"), _order_unseen(env, app, order)))
    key = profile_key(session.visitor_id)
    if key != read_for:  # an identity link adopted another visitor id: its profile was not read
        stored, landed = None, False
    profile = decode_profile(stored)
    if facts_task is not None and slug is not None:
        facts = decode_facts((await clock.waiting(_within_budget(facts_task, "catalog")))[0])
        if facts is not None:
            app.catalog.remember(slug, facts)
    try:
        if action or cart_header:  # a cart link answered with a page (GET /?add-to-cart=ID), or the shop's word
            before = Before.of(session)
            if await _cart_followed(app, js_req, parts, origin, session, action, None, cart_header, origin_resp, now):
                _follow_up(env, ctx, app.off_page_followups(before, session, now, _site(parts)), now)
        bought = _order_counted(env, ctx, app, session, order if order_new else None, now, _site(parts))
        csp = origin_resp.headers.get("content-security-policy")
        injection = plan_injection(str(csp) if isinstance(csp, str) else None, _site(parts))
        plan = app.plan_page(_page_request(js_req, parts), session, visit.offer, profile, now,
                             tracked=visit.tracked, cookies=visit.cookies, facts=facts, injection=injection,
                             preview=visit.preview,  # the shop says it priced the page with the offer:
                             offer_confirmed=not _absent(origin_resp.headers.get(OFFER_APPLIED_HEADER)))
        _record(env, ctx, app, plan.events, now)
        _follow_up(env, ctx, plan.followups, now)
        learn = _Learner(app, env, ctx, plan.learn, clock) if plan.learn and visit.tracked else None
        status, version = visit.status, app.rules_version

        def log_line(ended: bool) -> None:  # one line per page, once its body has gone through
            print(plan.log_line(status, version, round(clock.seconds * 1000, 2), clock.calls, ended))

        rewritten = _rewrite(origin_resp, plan, clock, log_line, learn)
        new_visit = plan.profile_write is not None
        write = None
        if new_visit or linked or late_link is not None:
            write = _write_profile(env, app, session, now, plan.profile_write if landed else None, new_visit,
                                   profile_task if key == read_for else None, linked, late_link)
        if write is not None or bought is not None:  # one after the other: each merges into what KV holds
            ctx.waitUntil(_profile_writes(env, session.visitor_id, write, bought, now))
        clock.pause()  # until HTMLRewriter calls the handlers
        return rewritten
    except Exception:  # fail open
        log.exception("nudge: personalizing the page failed; passing it through")
        return origin_resp


def _site(parts: Any) -> str:
    """scheme://host[:port] the shopper used (our own address: links in follow-ups, redirects)."""
    return f"{parts.scheme}://{parts.netloc}"


def _page_request(js_req: Any, parts: Any) -> PageRequest:
    """The plain values nudge reads from a page request (request.cf is absent outside Cloudflare)."""
    cf = getattr(js_req, "cf", None)
    country = getattr(cf, "country", None) if not _absent(cf) else None
    tz = getattr(cf, "timezone", None) if not _absent(cf) else None
    context = RequestContext(
        path=parts.path,
        user_agent=str(js_req.headers.get("user-agent") or "")[:512],
        country=str(country)[:2] if isinstance(country, str) else None,
        timezone=str(tz)[:64] if isinstance(tz, str) else None,
    )
    referrer = js_req.headers.get("referer")
    return PageRequest(
        context=context,
        query=parts.query,
        host=parts.hostname or "",
        referrer=str(referrer) if isinstance(referrer, str) else None,
        secure=not is_local_http(parts.scheme, parts.netloc),
        site=_site(parts),
    )


def _edge_cacheable(js_req: Any, env: Any, extra: dict[str, str]) -> bool:
    """Whether the page's base HTML may come from the edge cache, keyed by the origin URL (no
    cookies in it). Not for other methods, a visitor whose offer the origin is sent (it may price for them),
    credentials or ranges, nor with NUDGE_EDGE_CACHE=off."""
    if str(getattr(env, "NUDGE_EDGE_CACHE", "") or "on") != "on" or str(js_req.method) != "GET" or extra:
        return False
    return _absent(js_req.headers.get("range")) and _absent(js_req.headers.get("authorization"))


def _shareable(resp: Any) -> bool:
    """The origin says anyone may be served this HTML (guard.shareable_page: no Vary but
    Accept-Encoding, no cookie of its own). Only then is it kept in the edge cache."""
    names = ("cache-control", "content-type", "set-cookie", "vary")
    return shareable_page(int(resp.status), _headers(resp, names))


async def _fetch_origin(request: Any, cache_key: str | None, ctx: Any) -> Any:
    """The origin's response, from the edge cache when the origin allowed it to be shared.
    Personalization is applied per request on top, so a cached page is never anyone's page."""
    cache = getattr(getattr(js, "caches", None), "default", None) if cache_key else None
    if cache_key is None or cache is None or _absent(cache):
        return await _decodable(await js.fetch(request))
    try:
        hit = await cache.match(cache_key)
        if not _absent(hit):
            return hit
    except JsException as exc:
        log.warning("nudge: edge cache read failed: %s", exc)
    resp = await js.fetch(request)
    if _shareable(resp):
        try:
            ctx.waitUntil(_keep_whole(cache, cache_key, resp.clone()))
        except JsException as exc:
            log.warning("nudge: edge cache write failed: %s", exc)
    return await _decodable(resp)


MAX_CACHED_BODY = 8 * 1024 * 1024  # a shareable page this big (as declared) is not kept at the edge


async def _keep_whole(cache: Any, key: str, copy: Any) -> None:
    """The origin's page into the edge cache only once all of it has arrived: a body the origin
    broke off makes the read fail, and nothing is kept (Miniflare's cache keeps whatever a put
    received before its body errored, and would serve that later as a complete page). A body the
    runtime decoded (gzip, br) is kept decoded, without the Content-Encoding it no longer has: a
    cached copy still labelled gzip came back as gzip bytes under text/html."""
    try:
        declared = copy.headers.get("content-length")
        if isinstance(declared, str) and declared.isdigit() and int(declared) > MAX_CACHED_BODY:
            await copy.body.cancel()  # not kept: the shopper's copy streams on without it
            return
        body = await copy.arrayBuffer()  # rejects when the origin breaks off mid-body
        headers = js.Headers.new(copy.headers)
        if str(headers.get("content-encoding") or "").strip().lower() in _DECODED_ENCODINGS:
            headers.delete("content-encoding")
        headers.delete("content-length")
        kept = _opts(status=int(copy.status), statusText=str(copy.statusText), headers=headers)
        await cache.put(key, js.Response.new(body, kept))
    except JsException as exc:
        log.warning("nudge: edge cache write skipped: %s", exc)


def _origin_timeout(env: Any) -> int:
    """Seconds the edge waits for the origin's response headers before answering 504 itself:
    NUDGE_ORIGIN_TIMEOUT_SECONDS, default 100 (Cloudflare's own wait for an origin, after which it
    answers 524). The body is not timed: it streams to the shopper as the origin sends it."""
    return _env_int(env, "NUDGE_ORIGIN_TIMEOUT_SECONDS", 1, 600, ORIGIN_TIMEOUT)


def _edge_error(status: int, text: str) -> Any:
    """The edge's own answer when the origin gave none (never cached, never personalized)."""
    headers = _opts(**{"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"})
    return js.Response.new(text, _opts(status=status, headers=headers))


async def _origin_request(js_req: Any, target: str, parts: Any, extra: dict[str, str], signal: Any = None) -> Any:
    headers = js.Headers.new(js_req.headers)
    for name in list(headers.keys()):
        if is_nudge_header(str(name)) or name.lower() in _HOP_HEADERS:  # any spelling of X-Nudge-*
            headers.delete(name)
    cookie = without_our_cookies(js_req.headers.get("cookie"))
    if cookie:
        headers.set("cookie", cookie)
    else:
        headers.delete("cookie")
    headers.set("x-forwarded-host", parts.netloc)
    headers.set("x-forwarded-proto", parts.scheme)
    client = forwarded_for(_str_or_none(js_req.headers.get("x-forwarded-for")),
                           _str_or_none(js_req.headers.get("cf-connecting-ip")))
    if client:
        headers.set("x-forwarded-for", client)
    for name, value in extra.items():
        headers.set(name, value)
    method = str(js_req.method)
    if method in ("GET", "HEAD") or _absent(js_req.body):
        return js.Request.new(target, _opts(method=method, headers=headers, redirect="manual", signal=signal))
    body = await _forwarded_body(js_req)
    return js.Request.new(
        target, _opts(method=method, headers=headers, redirect="manual", signal=signal, body=body, duplex="half")
    )


# Request bodies up to 1 MiB are read whole and sent with their Content-Length: every form, login
# and cart call fits many times over, and even a hundred at once stay far below an isolate's
# 128 MB. Larger ones (uploads) are streamed, never held.
MAX_BUFFERED_BODY = 1024 * 1024


async def _forwarded_body(js_req: Any) -> Any:
    """The request body as the origin needs it: with its length. A body that reached the Worker
    without one (chunked; over HTTP/2 a client need not send it) went on chunked, and Django's own server and
    mod_wsgi read an empty body from that: every form failed its CSRF check. A body over the bound
    streams through a FixedLengthStream when the client declared its length; one with no declared
    length over the bound is the only kind still sent chunked (its length is known to nobody)."""
    length = js_req.headers.get("content-length")
    declared = int(str(length)) if isinstance(length, str) and length.isdigit() else None
    if declared is not None and declared > MAX_BUFFERED_BODY:
        return js_req.body.pipeThrough(js.FixedLengthStream.new(declared))
    if declared is not None:
        return await js_req.arrayBuffer()
    whole = await _read_body(js_req.clone(), MAX_BUFFERED_BODY)  # a copy: the body stays whole if too big
    if whole is None:
        return js_req.body
    await js_req.body.cancel()  # read whole through the copy: the original's buffered half is dropped
    return to_js(whole)


async def _decodable(resp: Any) -> Any:
    """The origin's response, once the runtime could decode the start of its body (gzip, br): the
    first chunk is read from one branch of a tee before anything is answered, so a corrupt body
    raises here (the caller answers 502, with a status line) instead of becoming a 200 whose body
    breaks off at once. Other responses are returned as they are, unread. A body that goes bad
    later still breaks off mid-way, as one the origin cut does."""
    encoding = str(resp.headers.get("content-encoding") or "").strip().lower()
    if encoding not in ("gzip", "br") or _absent(resp.body):
        return resp
    branches = resp.body.tee()
    probe, kept = branches[0], branches[1]
    reader = probe.getReader()
    try:
        await reader.read()
    except JsException:
        kept.cancel()  # not awaited: a tee's branch settles its cancel only when both are cancelled
        raise
    reader.cancel()  # the probe stops taking chunks; the kept branch streams on
    return js.Response.new(kept, resp)


def _relocated(resp: Any, origin: str, parts: Any) -> Any:
    """Rewrites an origin redirect that points at the origin's own address to our host (never to
    a Location a browser would read as another host: pages.own_location)."""
    location = resp.headers.get("location")
    moved = own_location(str(location), origin, _site(parts)) if location else None
    if moved is None:
        return resp
    headers = js.Headers.new(resp.headers)
    headers.set("location", moved)
    return js.Response.new(resp.body, _opts(status=resp.status, statusText=resp.statusText, headers=headers))


async def _cart_seen(app: Engine, env: Any, ctx: Any, js_req: Any, parts: Any, origin: str, session: Session,
                     action: RouteMatch | None, cart_body: Any, cart_header: str | None, origin_resp: Any,
                     now: int) -> Any:
    """A request to a shop's cart route, or the shop's X-Nudge-Cart on a response that is not a
    page: the session's cart follows, its cookie goes with the response."""
    try:
        before = Before.of(session)
        if not await _cart_followed(app, js_req, parts, origin, session, action, cart_body, cart_header, origin_resp,
                                    now):
            return origin_resp
        _follow_up(env, ctx, app.off_page_followups(before, session, now, _site(parts)), now)
        headers = js.Headers.new(origin_resp.headers)
        headers.append("set-cookie", app.session_cookie(session, not is_local_http(parts.scheme, parts.netloc)))
        return js.Response.new(origin_resp.body, _opts(status=origin_resp.status, statusText=origin_resp.statusText,
                                                       headers=headers))
    except (JsException, ValueError, TypeError):
        log.exception("nudge: reading a cart change failed; response passed through")
        return origin_resp


async def _cart_followed(app: Engine, js_req: Any, parts: Any, origin: str, session: Session,
                         action: RouteMatch | None, cart_body: Any, cart_header: str | None, origin_resp: Any,
                         now: int) -> bool:
    """The cart change and the shop's figures into the session (cart_truth.cart_seen); with
    `[cart] truth_url`, the shop's cart JSON read after an accepted change. True when it changed."""
    body = await cart_body if cart_body is not None else None
    seen = cart_seen(session, app.cart, action, body, js_req.headers.get("content-type"), int(origin_resp.status),
                     cart_header, now, app.catalog.price_of)
    truth = parse_cart_json(seen.read_truth, await _shop_cart(js_req, parts, origin, seen.read_truth.url, origin_resp)) \
        if seen.read_truth is not None else None
    if truth is not None:
        apply_cart_truth(session, truth, now)
    return seen.touched or truth is not None


async def _shop_cart(js_req: Any, parts: Any, origin: str, url: str, changed_by: Any) -> bytes | None:
    """The shop's cart JSON (`[cart] truth_url`), read as the shopper: their cookies (not nudge's)
    with the ones the cart change just set (a new cart cookie). None when it fails or is slow."""
    set_cookies = changed_by.headers.getSetCookie().to_py() if hasattr(changed_by.headers, "getSetCookie") else []
    headers = js.Headers.new()
    headers.set("accept", "application/json")
    headers.set("x-forwarded-host", parts.netloc)
    headers.set("x-forwarded-proto", parts.scheme)
    cookie = cookie_for_truth(without_our_cookies(js_req.headers.get("cookie")), [str(c) for c in set_cookies])
    if cookie:
        headers.set("cookie", cookie)
    try:
        resp = await asyncio.wait_for(js.fetch(origin + url, _opts(method="GET", headers=headers, redirect="manual")),
                                      CART_TRUTH_BUDGET)
        if int(resp.status) != 200:
            log.warning("nudge: the shop's cart %s answered %s", url, resp.status)
            return None
        return await asyncio.wait_for(_read_body(resp, MAX_TRUTH_BODY), CART_TRUTH_BUDGET)
    except (asyncio.TimeoutError, JsException) as exc:
        log.warning("nudge: reading the shop's cart %s failed: %r", url, exc)
        return None


def _shops_word(resp: Any) -> tuple[Any, str | None, str | None, str | None]:
    """(response, X-Nudge-User, X-Nudge-Order, X-Nudge-Cart): what the shop's origin says about
    the visitor, taken off the response so it never reaches the browser."""
    user, order, cart = (resp.headers.get(h) for h in (IDENTITY_HEADER, ORDER_HEADER, CART_HEADER))
    user, order = (user if isinstance(user, str) else None), (order if isinstance(order, str) else None)
    cart = cart if isinstance(cart, str) else None
    if user is not None or order is not None or cart is not None:
        resp = _without_headers(resp, (IDENTITY_HEADER, ORDER_HEADER, CART_HEADER))
    return resp, user, order, cart


def _order_counted(env: Any, ctx: Any, app: Engine, session: Session, order: ShopOrder | None, now: int,
                   site: str) -> KeyEvent | None:
    """A confirmed order KV has not counted yet: into the session, its conversion measured and its
    follow-ups cancelled now; the returned KeyEvent is merged into the profile after the response."""
    bought = app.order_seen(order, session, now, site) if order is not None else None
    if bought is not None and order is not None:
        ctx.waitUntil(_mark_order(env, app, order))  # first: the sooner it is in KV, the smaller the window
        _record(env, ctx, app, bought.events, now)
        _follow_up(env, ctx, bought.followups, now)
    return bought


async def _mark_order(env: Any, app: Engine, order: ShopOrder) -> None:
    try:  # no expiry: an order id counts once, ever
        await _kv(env).put(app.order_key(order.id), to_js(b"1"))
    except JsException as exc:
        log.error("nudge: order guard write failed: %s", exc)


def _without_headers(resp: Any, names: tuple[str, ...]) -> Any:
    headers = js.Headers.new(resp.headers)
    for name in names:
        headers.delete(name)
    return js.Response.new(resp.body, _opts(status=resp.status, statusText=resp.statusText, headers=headers))


async def _order_unseen(env: Any, app: Engine, order: ShopOrder | None) -> bool:
    """Whether KV has not yet counted this order id (a best-effort guard: KV is eventually
    consistent, see the README's threat model). An unreadable guard counts the order: the session
    still counts each order id once per visit."""
    if order is None:
        return False
    try:
        seen = await asyncio.wait_for(_kv_get(env, app.order_key(order.id)), ORDER_GUARD_BUDGET)
    except (asyncio.TimeoutError, JsException) as exc:
        log.warning("nudge: order guard read skipped: %r", exc)
        return True
    return seen is None


async def _profile_writes(env: Any, visitor: str, write: Any, bought: KeyEvent | None, now: int) -> None:
    """The page's profile write, then the confirmed order's merge (each merges into what KV holds)."""
    if write is not None:
        await write
    if bought is not None:
        await _record_key_event(env, visitor, bought, now)


async def _link_identity(env: Any, ctx: Any, app: Engine, session: Session, user: str, now: int,
                         budget: float | None = None) -> tuple[str | None, Any]:
    """Links this browser to the customer's profile: the first device seen for a customer owns the
    link; later devices adopt its visitor id, so every device shares one KV profile. Returns (hash,
    None) when the profile must record a new link (the caller folds it into its one profile write).
    A page waits at most `budget` seconds for the lookup; a slower one is finished after the
    response: (None, task), the task's result being the hash to record if this browser became the
    owner (a browser that must adopt another's visitor id does so on a later page, whose cookie can
    carry it)."""
    hashed = app.identity_of(user)
    if hashed is None:
        return None, None
    if session.identity == short(hashed):  # already linked: no KV traffic, but on a visit's first page
        if session.is_new:  # the customer is still known for follow-ups
            _remember_contact(env, ctx, app, session, user)
        return None, None
    lookup = _started(_kv_get(env, identity_key(hashed)))
    try:
        owner = await (asyncio.wait_for(asyncio.shield(lookup), budget) if budget else lookup)
    except asyncio.TimeoutError:
        log.warning("nudge: identity lookup slower than %s s; finished after the response", budget)
        return None, _started(_link_late(env, session.visitor_id, hashed, lookup))
    except JsException as exc:
        log.error("nudge: identity lookup failed: %s", exc)
        return None, None
    owner_id = owner.decode("ascii", "replace") if owner else None
    session.identity = short(hashed)
    if owner_id and len(owner_id) == 16 and owner_id != session.visitor_id:
        try:
            session.visitor = bytes.fromhex(owner_id)
        except ValueError:
            session.identity = None
    if session.identity is not None:
        _remember_contact(env, ctx, app, session, user)
    if owner_id:
        return None, None
    ctx.waitUntil(_kv_put(env, identity_key(hashed), session.visitor_id.encode("ascii")))
    return hashed, None


def _remember_contact(env: Any, ctx: Any, app: Engine, session: Session, user: str) -> None:
    """The customer's own id, kept only when follow-ups are configured (their webhook names it)."""
    if app.followups_enabled:
        ctx.waitUntil(_kv_put(env, contact_key(session.visitor_id), user.strip().encode(), CONTACT_TTL))


async def _no_link() -> tuple[str | None, Any]:
    return None, None


async def _link_late(env: Any, visitor: str, hashed: str, lookup: Any) -> str | None:
    """The end of an identity lookup a page did not wait for: a customer nobody owns yet is linked
    to this browser (its next page finds the link and notes it in the cookie)."""
    try:
        owner = await lookup
    except JsException as exc:
        log.error("nudge: identity lookup failed: %s", exc)
        return None
    if owner:
        return None
    await _kv_put(env, identity_key(hashed), visitor.encode("ascii"))
    return hashed


def _is_page(js_req: Any, resp: Any) -> bool:
    """Only a whole 200 text/html answer to a GET is rewritten; ranges, downloads, responses the
    origin marks `no-transform` and bodies in an encoding the runtime's fetch does not decode (it
    decodes gzip and br, and encodes the answer again) pass through byte-identical."""
    content_type = str(resp.headers.get("content-type") or "").lower()
    cache_control = str(resp.headers.get("cache-control") or "").lower()
    disposition = str(resp.headers.get("content-disposition") or "").lower()
    encoding = str(resp.headers.get("content-encoding") or "").strip().lower()
    return (
        str(js_req.method) == "GET"
        and int(resp.status) == 200
        and content_type.startswith("text/html")
        and not _absent(resp.body)
        and "no-transform" not in cache_control
        and not disposition.startswith("attachment")
        and encoding in _DECODED_ENCODINGS
        and _charset(content_type) not in _NOT_ASCII_COMPATIBLE
        and _absent(js_req.headers.get("range"))
    )


def _charset(content_type: str) -> str:
    """The charset parameter of a (lower-cased) Content-Type, "" when absent."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip() == "charset":
            return value.strip().strip('"\'')
    return ""


def _str_or_none(value: Any) -> str | None:
    """A header's value as Python has it: None when the header is absent."""
    return value if isinstance(value, str) else None


def _absent(value: Any) -> bool:
    """JS null/undefined as Pyodide hands them over (None, or jsnull where kept apart)."""
    return value is None or value is jsnull


# Prices: marked ones, and microdata with visible text (not meta/link). The product facts: the
# meta tags the collector reads, not every og: tag (any case and spacing, as it accepts them).
_PRICES = '[data-nudge-price], [itemprop="price"]:not(meta):not(link)'
_FACT_METAS = ", ".join(f'meta[property*="{key}" i]' for key in sorted(META_KEYS))


class _Markup:
    """nudge's markup for one page, and where it has gone: the style at the start of <head> (at the
    start of <body> when the page has no <head>), banners right after <body>, the config and client
    script before </body>, or at the end of the document when the page opened <body> and never
    closed it (</head>, </body> and </html> are all optional in HTML). A fragment without <body> gets
    nothing put in a body it does not have. Each piece goes in once; what is inserted is ASCII
    (character references for the rest), so it reads right in any ASCII-compatible charset the page
    declares. The end-tag call is timed into the page's own time."""

    def __init__(self, clock: OwnTime, jar: _ProxyJar, head: str, body_start: str, body_end: str) -> None:
        self.clock, self.jar = clock, jar
        self.style, self.start, self.end = (render.ascii_html(html) for html in (head, body_start, body_end))
        self.body_seen = self.style_placed = self.end_placed = False

    def head(self, el: Any) -> None:
        if self.style_placed or not self.style:
            return
        self.style_placed = True  # at the start: no need to wait for a </head> the page may not have
        el.prepend(self.style, _html())

    def body(self, el: Any) -> None:
        if self.body_seen:
            return
        self.body_seen = True
        first = self.start if self.style_placed else self.style + self.start
        self.style_placed = True
        if first:
            el.prepend(first, _html())
        if self.end:
            el.onEndTag(self.jar.proxy(self._before_body_end))

    def _before_body_end(self, end: Any) -> None:
        started = self.clock.timer()
        try:
            if not self.end_placed:
                self.end_placed = True
                end.before(self.end, _html())
        except Exception:
            log.exception("nudge: injection failed; page left as is")
        self.clock.handler_call(started)

    def document_end(self, end: Any) -> None:
        if self.body_seen and self.end and not self.end_placed:
            self.end_placed = True
            end.append(self.end, _html())


class _PageRewriter:
    """What HTMLRewriter calls for one page: it injects into head and body (`_Markup`), fills the
    slots rules chose and rewrites marked prices, then at the document's end has the product facts
    learned and the page logged. One object for the elements: one proxy crosses into JS per page,
    and making one costs more than telling a handful of elements apart by tag. Every call is timed
    into the page's own time and never lets an error out (that would break the stream mid-page)."""

    def __init__(self, clock: OwnTime, jar: _ProxyJar, plan: PagePlan, learn: _Learner | None) -> None:
        self.clock, self.jar, self.learn = clock, jar, learn
        self.markup = _Markup(clock, jar, plan.head, plan.body_start, plan.body_end)
        self.slots = dict(plan.slots)  # emptied as they are filled: the first element of a name only
        self.prices = (_Prices(plan.prices, plan.currency, plan.page_category == plan.prices.category)
                       if plan.prices is not None else None)

    def selector(self) -> str:
        """Only the elements this page needs: head, body, the slots a rule fills, and prices when
        an offer applies."""
        parts = ["head", "body", *(f'[data-nudge-slot="{slot}"]' for slot in self.slots)]
        return ", ".join(parts + ([_PRICES] if self.prices is not None else []))

    def element(self, el: Any) -> None:
        started = self.clock.timer()
        try:
            tag = el.tagName
            if tag == "head":
                self.markup.head(el)
            elif tag == "body":
                self.markup.body(el)
            else:
                slot = el.getAttribute("data-nudge-slot") if self.slots else None
                if isinstance(slot, str) and slot in self.slots:
                    self._fill(el, *self.slots.pop(slot))
                elif self.prices is not None:
                    self.prices.rewrite(el)
        except Exception:
            log.exception("nudge: rewriting an element failed; left as is")
        finally:
            self.clock.handler_call(started)

    @staticmethod
    def _fill(el: Any, mode: str, html: str) -> None:
        """A slot: its content replaced (the site's own content is the fallback, so it stays when
        no rule fills the slot) or a badge appended. Whole elements only: HTMLRewriter delivers
        text in arbitrary chunks."""
        html = render.ascii_html(html)
        if mode == "append":
            el.append(html, _html())
        else:
            el.setInnerContent(html, _html())

    def end(self, end: Any) -> None:
        started = self.clock.timer()
        try:
            self.markup.document_end(end)
        except Exception:
            log.exception("nudge: injection failed; page left as is")
        try:
            if self.learn is not None:
                self.learn.finish()
        except Exception:
            log.exception("nudge: learning product facts failed")
        self.clock.handler_call(started)
        self.jar.close(ended=True)


class _Prices:
    """Shows marked prices with the visitor's discount where the cart charges it but the page does
    not show it (`apply = "header"` with `[shop] offer_header = "honoured"`, offer_apply.py):
    `data-nudge-price="129.00"` or schema.org microdata `itemprop="price" content="129.00"`. The
    value comes from the attribute and the element's whole content is replaced. A price marked
    `data-nudge-category="..."` is rewritten on any page when that is the offer's category (and
    never when it is another); an unmarked one only on pages of the offer's category."""

    def __init__(self, offer: Redeemed, currency: str, page_matches: bool) -> None:
        self.offer, self.currency, self.page_matches = offer, currency, page_matches

    def rewrite(self, el: Any) -> None:
        category = el.getAttribute("data-nudge-category")
        if not (category == self.offer.category if isinstance(category, str) else self.page_matches):
            return
        marked = el.getAttribute("data-nudge-price")
        if not isinstance(marked, str):
            marked = el.getAttribute("content")  # microdata (the selector skips meta and link)
        prices = self.offer.price_after(marked if isinstance(marked, str) else None)
        if prices is None:
            return
        el.setInnerContent(render.ascii_html(render.price(prices[0], prices[1], self.currency)), _html())
        el.setAttribute("data-nudge-priced", "")
        if isinstance(el.getAttribute("content"), str):
            el.setAttribute("content", f"{prices[1]:.2f}")


class _Learner:
    """Reads a product page's JSON-LD and og/product meta tags as they stream by; at the end of the
    document the facts go to the isolate's catalog and, when new, to KV. Its own proxy: it takes
    text chunks, which the page's other elements must not be sent."""

    def __init__(self, app: Engine, env: Any, ctx: Any, slug: str, clock: OwnTime) -> None:
        self.app, self.env, self.ctx, self.slug, self.clock = app, env, ctx, slug, clock
        self.collector = ProductFactsCollector()

    def text(self, chunk: Any) -> None:
        started = self.clock.timer()
        try:
            self.collector.feed_json_ld(str(chunk.text), bool(chunk.lastInTextNode))
        except Exception:  # never break the stream over a product fact
            log.exception("nudge: reading JSON-LD failed")
        self.clock.handler_call(started)

    def element(self, el: Any) -> None:
        started = self.clock.timer()
        try:
            if el.tagName == "meta":
                prop, content = el.getAttribute("property"), el.getAttribute("content")
                self.collector.feed_meta(prop if isinstance(prop, str) else None,
                                         content if isinstance(content, str) else None)
        except Exception:
            log.exception("nudge: reading meta tags failed")
        self.clock.handler_call(started)

    def finish(self) -> None:
        facts = self.collector.facts()
        if facts is not None and self.app.catalog.remember(self.slug, facts):
            self.ctx.waitUntil(_kv_put(self.env, product_key(self.slug), encode_facts(facts), CATALOG_TTL))


class _ProxyJar:
    """Proxies handed to HTMLRewriter for one response. They must outlive `fetch` (the body streams
    later), so they are destroyed after the document ends, or swept if the stream was abandoned.
    `report(ended)` runs once either way (the page's log line)."""

    open: list[_ProxyJar] = []
    MAX_AGE = 120.0

    def __init__(self, report: Callable[[bool], None]) -> None:
        self.proxies: list[Any] = []
        self.born = time.monotonic()
        self.done = False
        self.report = report
        _ProxyJar.sweep()
        _ProxyJar.open.append(self)

    def proxy(self, obj: Any) -> Any:
        p = create_proxy(obj)
        self.proxies.append(p)
        return p

    def close(self, ended: bool) -> None:
        if not self.done:
            self.done = True  # destroyed on the next sweep, outside the handler that is running now
            self.report(ended)

    @classmethod
    def sweep(cls) -> None:
        now = time.monotonic()
        keep = []
        for jar in cls.open:
            if jar.done or now - jar.born > cls.MAX_AGE:
                jar.close(ended=False)  # no-op for a document that ended
                for p in jar.proxies:
                    p.destroy()
            else:
                keep.append(jar)
        cls.open = keep


def _rewrite(origin_resp: Any, plan: PagePlan, clock: OwnTime, report: Callable[[bool], None],
             learn: _Learner | None = None) -> Any:
    """The page streamed through HTMLRewriter, anchored on head, body and the elements the page
    marks for nudge, so few handler calls cross into Python (4 on a typical page: head, body,
    </body> and the document's end; one more per filled slot or rewritten price)."""
    base = js.Response.new(origin_resp.body, origin_resp)  # status, text and a mutable copy of the headers
    headers = base.headers
    # nudge's own time so far (reading the visitor, deciding, rendering); the handler calls while
    # the body streams come after the headers are sent: the page's log line has the total
    headers.append("server-timing", f'nudge;dur={clock.pause() * 1000:.2f};desc="nudge before body"')
    clock.resume()
    headers.delete("content-length")
    headers.set("cache-control", "private, no-store")  # personalized: no shared cache may keep it
    headers.append("vary", "Cookie")
    for cookie in plan.set_cookies:
        headers.append("set-cookie", cookie)
    jar = _ProxyJar(report)
    page = _PageRewriter(clock, jar, plan, learn)
    handler = jar.proxy(page)
    rewriter = js.HTMLRewriter.new().on(page.selector(), handler)
    if learn is not None:  # only product pages whose facts nudge does not know yet
        reader = jar.proxy(learn)
        rewriter = rewriter.on(f'script[type="application/ld+json"], {_FACT_METAS}', reader)
    return rewriter.onDocument(handler).transform(base)


# -- nudge's own endpoints ------------------------------------------------------------------------


async def _endpoint(js_req: Any, env: Any, ctx: Any, parts: Any, app: Engine | None) -> Any:
    now = int(time.time())
    if app is None:
        return _reply(Reply(503, '{"error": "nudge is not configured"}'))
    secure = not is_local_http(parts.scheme, parts.netloc)
    path = parts.path
    static = {CLIENT_PATH: app.client, STYLE_PATH: app.stylesheet, HEALTH_PATH: app.health}.get(path)
    if static is not None:
        return _reply(static())
    if path not in (BEACON_PATH, REDEEM_PATH, FORGET_PATH, EXPLAIN_PATH, PREVIEW_PATH):
        return _reply(Reply(404, '{"error": "not found"}'))
    if (refused := _cross_origin(js_req, parts)) is not None:  # nothing read, stored, set or erased
        return refused
    cookies = parse_cookies(js_req.headers.get("cookie"))
    if path == EXPLAIN_PATH:
        return _reply(await _explain(js_req, env, app, parts, cookies, now))
    if path == PREVIEW_PATH:
        return _reply(app.start_preview(parts.query, now, secure))
    if path == FORGET_PATH:
        return _reply(await _forget(js_req, env, app, cookies, secure))
    if app.visitor_status(_headers(js_req, _PRIVACY_HEADERS), cookies) != "tracked":
        if path == BEACON_PATH:  # accepted and dropped: nothing is stored without consent
            return _reply(Reply(204))
        return _reply(app.redeem("", Session.fresh(now), now, secure)[0])
    session = app.load_session(cookies, now)
    linked: str | None = None
    code = (parse_qs(parts.query).get("code") or [None])[0] if path == REDEEM_PATH else None
    if code is not None:  # a follow-up's single-use code: its details in KV, its use in the ledger
        issued = IssuedCode.decode(await _kv_get(env, code_key(code))) if _CODE.fullmatch(code) else None
        active = app.active_offer(cookies, now)
        answer = await _ledger_redeem(env, app.code_claim(issued, now, active))
        reply, event = app.redeem_code(issued, session, now, secure, active, answer)
    elif path == REDEEM_PATH:
        active = app.active_offer(cookies, now)
        answer = await _ledger_redeem(env, app.redeem_claim(parts.query, session, now, active))
        reply, event = app.redeem(parts.query, session, now, secure, active, answer)
    else:
        body = await _read_body(js_req, MAX_BEACON_BODY)
        if body is None:
            return _reply(Reply(413, '{"error": "body larger than 8192 bytes"}'))
        beacon = app.read_beacon(str(js_req.method), body, js_req.headers.get("content-type"))
        if isinstance(beacon, Reply):
            return _reply(beacon)
        for item in beacon.events:  # identity only from the shop: a token its server signed (a bare
            user = app.identity_from_token(item.token, now) if item.type == "identify" and item.token else None
            if user is not None:  # `user` the browser states is ignored)
                linked = (await _link_identity(env, ctx, app, session, user, now))[0] or linked
        reply, event = app.apply_beacon(beacon, session, now, secure, _site(parts))
        _follow_up(env, ctx, event.followups, now)
    if event or linked:  # one read-merge-write of the profile per request
        ctx.waitUntil(_record_key_event(env, session.visitor_id, event, now, identity=linked))
    _record(env, ctx, app, event.events, now)
    return _reply(reply)


def _cross_origin(js_req: Any, parts: Any) -> Any | None:
    """403 for a state-changing request another origin may have sent (guard.cross_origin_refusal:
    CSRF, or a page on another subdomain or port); None when it may go on."""
    refusal = cross_origin_refusal(str(js_req.method), _str_or_none(js_req.headers.get("sec-fetch-site")),
                                   _str_or_none(js_req.headers.get("origin")), _site(parts))
    if refusal is None:
        return None
    log.warning("nudge: refused %s %s: %s", js_req.method, parts.path, refusal)
    return _reply(Reply(403, f"Forbidden: {refusal}\n", "text/plain; charset=utf-8", [("Cache-Control", "no-store")]))


# -- the redemption ledger (Durable Object) -------------------------------------------------------


def open_ledger(ctx: Any) -> Ledger:
    """The ledger over a Durable Object's SQLite storage (called in NudgeLedger's constructor)."""
    sql = ctx.storage.sql

    def run(query: str, *params: Any) -> list[list[Any]]:
        rows: list[list[Any]] = getattr(js.Array, "from")(sql.exec(query, *params).raw()).to_py()
        return rows

    return Ledger(run)


def _ledger(env: Any, rule_id: str) -> Any:
    """The stub of a rule's ledger object; raises LookupError without the binding (or when
    NUDGE_LOCAL_LEDGER_FAIL plays an outage)."""
    namespace: Any = getattr(env, LEDGER_BINDING, None)
    if _absent(namespace):
        raise LookupError(f"no {LEDGER_BINDING} Durable Object binding (see wrangler.toml)")
    if _local(env, "NUDGE_LOCAL_LEDGER_FAIL"):
        raise LookupError("the ledger is unreachable: NUDGE_LOCAL_LEDGER_FAIL")
    return namespace.get(namespace.idFromName(ledger_name(rule_id)))


async def _ledger_redeem(env: Any, claim: LedgerClaim | None) -> str:
    """The ledger's verdict on a claim ("redeemed", "used", "ended"); "unavailable" when it could
    not be asked in LEDGER_TIMEOUT seconds: no offer is granted then (fail closed for money)."""
    if claim is None:
        return UNAVAILABLE  # not consulted: the app answers without the ledger
    try:
        call = _ledger(env, claim.rule).redeem(claim.key, claim.limit, claim.keep_until)
        return verdict(await asyncio.wait_for(_awaited(call), LEDGER_TIMEOUT))
    except Exception as exc:  # an outage, an exception inside the object, a timeout: no offer
        log.error("nudge: redemption ledger unavailable, offer refused: %s", exc)
        return UNAVAILABLE


async def _awaited(promise: Any) -> Any:
    return await promise


async def _refresh_budgets(env: Any, app: Engine) -> None:
    """Marks the offers whose daily budget ran out (perhaps in another isolate), so they stop
    showing; an unreachable ledger changes nothing (redemptions still ask it)."""
    now = int(time.time())
    for rule in app.ruleset.rules:
        if rule.offer is not None and rule.offer.max_per_day and rule.id not in app.spent_today(now):
            try:
                used = await asyncio.wait_for(_awaited(_ledger(env, rule.id).used()), LEDGER_TIMEOUT)
            except Exception as exc:
                log.warning("nudge: budget of %s not refreshed: %s", rule.id, exc)
                continue
            app.budget_spent(rule.id, int(used), now)


async def _explain(js_req: Any, env: Any, app: Engine, parts: Any, cookies: dict[str, str], now: int) -> Reply:
    """The explain page for this browser: its session and profile as the page would see them."""
    status = app.visitor_status(_headers(js_req, _PRIVACY_HEADERS), cookies)
    session = app.load_session(cookies, now) if status == "tracked" else Session.fresh(now)
    profile = None
    if status == "tracked" and COOKIE_NAME in cookies:
        try:
            profile = decode_profile(await _kv_get(env, profile_key(session.visitor_id)))
        except JsException as exc:
            log.warning("nudge: explain could not read the profile: %s", exc)
    return app.explain(parts.query, session, profile, now, status, _page_request(js_req, parts).context)


async def _forget(js_req: Any, env: Any, app: Engine, cookies: dict[str, str], secure: bool) -> Reply:
    """Erases the visitor's KV profile (awaited, so the answer is true) and their cookies."""
    visitor = None
    if str(js_req.method) == "POST" and COOKIE_NAME in cookies:
        try:
            visitor = app.codec.decode(cookies[COOKIE_NAME]).visitor_id
        except BadData:
            visitor = None
    erased = False
    identity = False
    if visitor is not None:
        key = profile_key(visitor)
        try:
            profile = decode_profile(await _kv_get(env, key))
            erased = profile is not None
            if profile is not None and profile.identity:  # the link, only while it is this visitor's
                owner = await _kv_get(env, identity_key(profile.identity))
                if owner is not None and owner.decode("ascii", "replace") == visitor:
                    await _kv(env).delete(identity_key(profile.identity))
                    identity = True
            await _kv(env).delete(key)
        except JsException as exc:  # say so, and keep the cookies: a retry needs the visitor id
            log.error("nudge: forget failed: %s", exc)
            return Reply(503, '{"error": "the stored profile could not be erased just now; try again"}',
                         headers=[("retry-after", "60")])
        await _erase_followups(env, visitor)
    return app.forget(str(js_req.method), cookies, visitor, erased, secure, identity)


def _reply(reply: Reply) -> Any:
    headers = js.Headers.new()
    headers.set("content-type", reply.content_type)
    for name, value in reply.headers:  # a Location percent-encoded: any Unicode path round-trips
        headers.append(name, location_value(value) if name.lower() == "location" else value)
    body = reply.body if reply.status not in (204, 304) else None
    return js.Response.new(body, _opts(status=reply.status, headers=headers))


MAX_DRAIN = 64 * 1024


async def _drain(js_req: Any) -> None:
    """Reads and drops what is left of a request body an endpoint answered without reading (a 403,
    a 413 by its declared length), up to 64 KiB: the runtime then keeps the connection open for the
    client's next request, as it did while passThroughOnException buffered every body. A larger
    one is left: its connection closes."""
    try:
        if not _absent(js_req.body) and not bool(js_req.bodyUsed):
            await _read_body(js_req, MAX_DRAIN)
    except JsException as exc:
        log.warning("nudge: request body not drained: %s", exc)


async def _read_body(js_req: Any, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` (read no further than that)."""
    if _absent(js_req.body):
        return b""
    length = js_req.headers.get("content-length")
    if length is not None and str(length).isdigit() and int(str(length)) > limit:
        return None
    reader = js_req.body.getReader()
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await reader.read()
        if chunk.done:
            break
        data = bytes(chunk.value.to_py())
        size += len(data)
        if size > limit:
            await reader.cancel()
            return None
        chunks.append(data)
    return b"".join(chunks)


# -- measurement ----------------------------------------------------------------------------------


def _record(env: Any, ctx: Any, app: Engine, events: list[Event], now: int) -> None:
    """Writes measurement events to Analytics Engine (NUDGE_EVENTS) after the response is sent.
    Without the binding nothing is recorded; a failing write is logged, never raised."""
    if not events:
        return
    dataset = getattr(env, "NUDGE_EVENTS", None)
    if _absent(dataset):
        return
    echo = _local(env, "NUDGE_LOCAL_EVENTS") == "log"
    ctx.waitUntil(_write_points(dataset, [e.data_point(app.rules_version, now) for e in events], echo))


async def _write_points(dataset: Any, points: list[dict[str, Any]], echo: bool) -> None:
    for point in points:
        try:
            dataset.writeDataPoint(to_js(point, dict_converter=js.Object.fromEntries))
            if echo:  # the local runtime's Analytics Engine keeps nothing: tests and `make dev` read this
                print(json.dumps({"nudge": "event", "point": point}, separators=(",", ":")))
        except Exception as exc:  # measurement must never cost the shopper anything
            log.error("nudge: event write failed: %s", exc)


# -- KV -------------------------------------------------------------------------------------------


# -- local-only hooks: vars that only `make dev` and the tests set, never wrangler.toml -----------


def _local(env: Any, name: str) -> str:
    value = getattr(env, name, None)
    return "" if _absent(value) else str(value)


class _FaultyKv:
    """The KV binding as an outage makes it: each operation waits NUDGE_LOCAL_KV_DELAY_MS, and the
    ones named in NUDGE_LOCAL_KV_FAIL (`get,put`, or `all`) then fail with a JS error, as a real
    KV failure reaches the Worker. For the fault tests: workerd's local KV does not fail."""

    def __init__(self, kv: Any, fail: frozenset[str], delay: float) -> None:
        self._kv, self._fail, self._delay = kv, fail, delay

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        real = getattr(self._kv, operation)

        async def call(*args: Any) -> Any:
            if self._delay:
                await asyncio.sleep(self._delay)
            if operation in self._fail or "all" in self._fail:
                key = args[0] if args and isinstance(args[0], str) else ""
                await js.Promise.reject(js.Error.new(f'KV {operation}("{key}") failed: NUDGE_LOCAL_KV_FAIL'))
            return await real(*args)

        return call


def _kv(env: Any) -> Any:
    """env.NUDGE_KV, or the same with the local fault hooks when they are set."""
    fail, delay = _local(env, "NUDGE_LOCAL_KV_FAIL"), _local(env, "NUDGE_LOCAL_KV_DELAY_MS")
    if not fail and not delay:
        return env.NUDGE_KV
    return _FaultyKv(env.NUDGE_KV, frozenset(fail.split(",")) - {""}, int(delay or 0) / 1000)


def _delay(env: Any, seconds: int) -> int:
    """A queue delay, at most NUDGE_LOCAL_QUEUE_DELAY_CAP seconds when that is set: Queues wait in
    real time, also locally, so the tests see a 15-minute follow-up after a few seconds."""
    cap = _local(env, "NUDGE_LOCAL_QUEUE_DELAY_CAP")
    return min(seconds, int(cap)) if cap.isdigit() else seconds


def _to_bytes(value: Any) -> bytes | None:
    if _absent(value):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if hasattr(value, "to_bytes"):
        return bytes(value.to_bytes())
    if hasattr(value, "to_py"):
        return bytes(value.to_py())
    return None


async def _kv_get(env: Any, key: str) -> bytes | None:
    return _to_bytes(await _kv(env).get(key, "arrayBuffer"))


def _profile_ttl(env: Any) -> int:
    """Seconds a profile (and identity link) lives in KV: NUDGE_PROFILE_TTL_DAYS, default 400."""
    return _env_int(env, "NUDGE_PROFILE_TTL_DAYS", 1, 3650, PROFILE_TTL // 86_400) * 86_400


async def _kv_put(env: Any, key: str, value: bytes, ttl: int | None = None) -> None:
    """Writes a KV value (profiles and identity links by default live NUDGE_PROFILE_TTL_DAYS)."""
    try:
        await _kv(env).put(key, to_js(value), _opts(expirationTtl=ttl or _profile_ttl(env)))
    except JsException as exc:
        log.error("nudge: profile write failed: %s", exc)


async def _write_profile(env: Any, app: Engine, session: Session, now: int, write: Profile | None,
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
    key = profile_key(session.visitor_id)
    if write is None and new_visit:
        try:
            stored = await pending if pending is not None else await _kv_get(env, key)
        except (JsException, TypeError, ValueError) as exc:
            log.error("nudge: profile not written: %s could not be read (%s)", key, exc)
            return
        write = app.visit_profile(decode_profile(stored), session, now)
    if write is not None:
        await _kv_put(env, key, encode_profile(dataclasses.replace(write, identity=linked) if linked else write))
    elif linked:
        await _record_key_event(env, session.visitor_id, KeyEvent(), now, identity=linked)


async def _record_key_event(env: Any, visitor: str, event: KeyEvent, now: int, identity: str | None = None) -> None:
    """Merges a purchase, redemption or identity link into the KV profile (read, merge, write; in
    the background)."""
    try:
        stored = decode_profile(await _kv_get(env, profile_key(visitor)))
    except JsException as exc:
        log.error("nudge: profile read failed: %s", exc)
        return
    updated = merged_profile(stored, now, new_visit=False, orders=event.orders,
                             revenue=event.revenue, redeemed=event.redeemed, identity=identity,
                             stopped=event.stopped)
    await _kv_put(env, profile_key(visitor), encode_profile(updated))


# -- follow-ups (Queues) --------------------------------------------------------------------------


def _follow_up(env: Any, ctx: Any, plan: FollowUpPlan, now: int) -> None:
    """Schedules and cancels follow-ups after the response (KV state, then the delayed message)."""
    if plan:
        ctx.waitUntil(_apply_followups(env, plan, now))


async def _apply_followups(env: Any, plan: FollowUpPlan, now: int) -> None:
    """Each cancellation and schedule is a read-merge-write of the rule's pending state (keeping
    its send history for caps); a message is enqueued only once its state is stored."""
    for rule_id, reason in plan.cancel:
        key = pending_key(plan.visitor, rule_id)
        try:
            pending = Pending.decode(await _kv_get(env, key))
            if pending is not None and pending.event and not pending.cancelled:
                await _kv_put(env, key, pending.cancel(reason).encode())
        except JsException as exc:
            log.error("nudge: cancelling follow-up %s failed: %s", rule_id, exc)
    for message in plan.schedule:
        key = pending_key(message.visitor, message.rule)
        try:
            pending = Pending.decode(await _kv_get(env, key)) or Pending()
            if pending.in_flight(message):  # one message per event id
                continue
            await _kv_put(env, key, pending.scheduled(message).encode())
            await env.NUDGE_FOLLOWUPS.send(message.to_json(), _opts(delaySeconds=_delay(env, message.delay(now))))
        except JsException as exc:
            log.error("nudge: scheduling follow-up %s failed: %s", message.rule, exc)


def _withdrawn(env: Any, ctx: Any, app: Engine, cookies: dict[str, str]) -> None:
    """A visitor who withdrew consent (their old cookie still arrives once, before it is erased):
    nothing pending for them may be sent."""
    try:
        visitor = app.codec.decode(cookies[COOKIE_NAME]).visitor_id
    except BadData:
        return
    ctx.waitUntil(_erase_followups(env, visitor))


async def _erase_followups(env: Any, visitor: str) -> None:
    """Deletes a visitor's pending follow-ups and the customer id kept for them."""
    try:
        listed = await _kv(env).list(_opts(prefix=pending_prefix(visitor)))
        data = listed.to_py() if hasattr(listed, "to_py") else listed  # `.keys` is a dict method here
        for key in data["keys"]:
            await _kv(env).delete(str(key["name"]))
        await _kv(env).delete(contact_key(visitor))
    except Exception as exc:  # forgetting the rest must not fail on this
        log.error("nudge: erasing follow-ups failed: %s", exc)


async def handle_queue(batch: Any, env: Any, ctx: Any) -> None:
    """The Worker's queue handler: sends the follow-ups that came due, if they still hold. Each
    message is acked (sent, skipped, or dead-lettered for a 4xx) or retried with backoff (5xx,
    timeout, or nudge itself failing); after max_retries Queues moves it to the dead letter queue."""
    try:
        app = _app_for(env)
    except ConfigError as exc:
        log.error("nudge: follow-ups wait: %s", exc)
        batch.retryAll(_opts(delaySeconds=_delay(env, backoff(1))))
        return
    if _rules_due(app, env):  # awaited: a batch is not in a hurry
        app.rules_checked = time.monotonic()
        await _refresh_rules(env, app)
    for message in batch.messages:
        attempts = int(message.attempts or 1)
        try:
            await _deliver(app, env, ctx, message, attempts)
        except Exception:
            log.exception("nudge: follow-up delivery failed; retrying")
            message.retry(_opts(delaySeconds=_delay(env, backoff(attempts))))


def _followup_log(message: FollowUp | None, attempt: int, result: str, **extra: Any) -> None:
    """One JSON line per attempt: event and rule, never the visitor or the customer."""
    print(json.dumps({"nudge": "followup", "event": message.event if message else None,
                      "rule": message.rule if message else None, "attempt": attempt, "result": result, **extra},
                     separators=(",", ":")))


async def _deliver(app: Engine, env: Any, ctx: Any, queued: Any, attempts: int) -> None:
    now = int(time.time())
    body = queued.body
    try:
        message = FollowUp.from_json(body)
    except MessageError as exc:
        _followup_log(None, attempts, "dead_letter", reason=str(exc))
        await _dead_letter(env, str(body)[:8192], str(exc))
        queued.ack()
        return
    rule = app.ruleset.followup(message.rule)
    pending_raw, profile_raw, contact_raw = await asyncio.gather(
        _kv_get(env, pending_key(message.visitor, message.rule)), _kv_get(env, profile_key(message.visitor)),
        _kv_get(env, contact_key(message.visitor)))
    pending, profile = Pending.decode(pending_raw), decode_profile(profile_raw)
    contact = contact_raw.decode("utf-8", "replace") if contact_raw else None
    reason = skip_reason(message, rule, pending, profile.last_order if profile else 0, contact, now)
    if reason is not None or rule is None or pending is None or contact is None:
        _followup_log(message, attempts, "skipped", reason=reason)
        queued.ack()
        return
    key = pending_key(message.visitor, message.rule)
    if in_holdout(rule.id, message.visitor, rule.holdout):  # counted as "would have sent", never sent
        await _kv_put(env, key, pending.delivered(message, now).encode())
        _record(env, ctx, app, [Event("exposure", message.visitor, rule.id, 0, "holdout", "followup")], now)
        _followup_log(message, attempts, "holdout")
        queued.ack()
        return
    url, secret = str(getattr(env, "NUDGE_WEBHOOK_URL", "") or ""), str(getattr(env, "NUDGE_WEBHOOK_SECRET", "") or "")
    if not app.followups_enabled:
        _followup_log(message, attempts, "retry", reason="follow-ups are not configured")
        queued.retry(_opts(delaySeconds=_delay(env, backoff(attempts))))
        return
    code = await _issued_code(env, app, rule, message, now)
    data = json.dumps(app.followup_body(message, contact, code, now), separators=(",", ":")).encode()
    timeout = _env_int(env, "NUDGE_WEBHOOK_TIMEOUT", 1, 30, WEBHOOK_TIMEOUT)
    status = await _post_webhook(url, data, sign(secret.encode(), data, now), message.event, timeout)
    result = delivery_outcome(status)
    _followup_log(message, attempts, result, status=status)
    if result == "delivered":
        await _kv_put(env, key, pending.delivered(message, now).encode())
        _record(env, ctx, app, [Event(kind, message.visitor, rule.id, 0, "treatment", "followup")
                                for kind in ("exposure", "impression")], now)
        queued.ack()
    elif result == "retry":
        queued.retry(_opts(delaySeconds=_delay(env, backoff(attempts))))
    else:  # the receiver refused it: retrying cannot help
        await _dead_letter(env, message.to_json(), f"webhook answered {status}")
        queued.ack()


async def _issued_code(env: Any, app: Engine, rule: Any, message: FollowUp, now: int) -> IssuedCode | None:
    """The follow-up's code, its details stored in KV once (a retry finds it as is); whether it
    was used is the redemption ledger's to say, not KV's."""
    code = issue_code(app.code_secret, rule, message, now)
    if code is None:
        return None
    stored = IssuedCode.decode(await _kv_get(env, code_key(code.code)))
    if stored is not None:
        return stored
    await _kv_put(env, code_key(code.code), code.encode(), max(60, code.expires - now))
    return code


async def _post_webhook(url: str, body: bytes, signature: str, event: str, timeout: int) -> int | None:
    """POSTs the signed body; the status, or None for a timeout (`timeout` seconds, then
    abandoned) or a network failure."""
    headers = js.Headers.new()
    headers.set("content-type", "application/json")
    headers.set(SIGNATURE_HEADER, signature)
    headers.set("x-nudge-event", event)
    try:
        resp = await js.fetch(url, _opts(method="POST", headers=headers, body=body.decode("utf-8"), redirect="manual",
                                         signal=js.AbortSignal.timeout(timeout * 1000)))
        status = int(resp.status)
        if not _absent(resp.body):  # the answer's body is of no interest
            try:
                await resp.body.cancel()
            except JsException:
                pass
        return status
    except JsException as exc:
        log.warning("nudge: webhook attempt failed: %s", exc)
        return None


async def _dead_letter(env: Any, body: str, reason: str) -> None:
    """Puts a follow-up nobody will accept on the dead letter queue, with the reason."""
    queue: Any = getattr(env, "NUDGE_DEAD_LETTERS", None)
    if _absent(queue):
        log.error("nudge: follow-up dropped (%s); no NUDGE_DEAD_LETTERS binding", reason)
        return
    try:
        await queue.send(json.dumps({"reason": reason, "message": body}))
    except JsException as exc:
        log.error("nudge: dead-lettering a follow-up failed: %s", exc)
