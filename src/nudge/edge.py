"""The boundary between nudge and the Workers runtime: the only module that imports `js`,
`pyodide` or `workers`.

It converts JS values to plain Python at the border, does the I/O (origin fetch, KV, HTMLRewriter)
and asks `nudge.app` what to do. It fails open: if nudge's own logic fails, the shopper gets the
origin's response unchanged and the error is logged; origin errors pass through as they are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import js
from pyodide.ffi import JsException, create_proxy, to_js

try:
    from pyodide.ffi import jsnull  # JS null, where the runtime keeps it apart from undefined
except ImportError:  # older Pyodide: null converts to None
    jsnull = None

from .app import (
    BEACON_PATH,
    CLIENT_PATH,
    FORGET_PATH,
    HEALTH_PATH,
    PREFIX,
    REDEEM_PATH,
    STYLE_PATH,
    EXPLAIN_PATH,
    PREVIEW_PATH,
    EdgeApp,
    KeyEvent,
    PagePlan,
    PageRequest,
    Reply,
)
from .attributes import RequestContext
from .cookies import is_local_http, parse_cookies, without_our_cookies
from .csp import plan_injection
from .events import Event
from .offers import OFFER_APPLIED_HEADER, Redeemed, budget_key
from .pages import own_location
from .preview import Preview
from . import render
from .profile import PROFILE_TTL, decode_profile, encode_profile, merged_profile, profile_key
from .rules import RuleError, load_ruleset
from .ruleset_blob import POINTER_KEY, blob_key, load_blob, rules_version
from .cart import MAX_CART_BODY, apply_cart_change, cart_action, parse_cart_body
from .catalog import CATALOG_TTL, decode_facts, encode_facts, product_key
from .identity import IDENTITY_HEADER, identity_key, short
from .product_facts import ProductFactsCollector
from .privacy import ConsentPolicy
from .session import COOKIE_NAME, Session
from .signing import BadData, parse_secrets

log = logging.getLogger("nudge")

BUDGET_TTL = 2 * 86_400  # a day's redemption counter outlives its day, then goes
KV_BUDGET = 0.05  # seconds we wait for the profile once the origin has answered
RULES_REFRESH = 30  # seconds between looks for newly published rules (NUDGE_RULES_REFRESH_SECONDS)
MAX_BEACON_BODY = 8 * 1024
_HOP_HEADERS = ("host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade")

_PRIVACY_HEADERS = ("user-agent", "sec-purpose", "purpose", "x-purpose", "x-moz", "sec-gpc", "dnt")

_app: tuple[tuple[str, ...], EdgeApp] | None = None


class ConfigError(RuntimeError):
    """The Worker is deployed without what it needs (e.g. no NUDGE_SECRET)."""


def _app_for(env: Any) -> EdgeApp:
    """The per-isolate EdgeApp (rule set parsed once; rebuilt only if the secret changes)."""
    global _app
    names = ("NUDGE_SECRET", "NUDGE_CONSENT", "NUDGE_CONSENT_COOKIE", "NUDGE_EDGE_CART", "NUDGE_SHADOW",
             "NUDGE_EXPLAIN_TOKEN")
    config = tuple(str(getattr(env, name, "") or "") for name in names)
    if _app is None or _app[0] != config:
        secret, consent_mode, consent_cookie, edge_cart, shadow, explain_token = config
        secrets = parse_secrets(secret)
        if not secrets:
            raise ConfigError("NUDGE_SECRET is not set (`wrangler secret put NUDGE_SECRET`; locally .dev.vars)")
        try:
            consent = ConsentPolicy.from_config(consent_mode or None, consent_cookie or None)
        except ValueError as exc:
            raise ConfigError(f"NUDGE_CONSENT: {exc}") from exc
        from . import _bundle

        for name, value in (("NUDGE_EDGE_CART", edge_cart), ("NUDGE_SHADOW", shadow)):
            if value not in ("", "on", "off"):
                raise ConfigError(f"{name} must be 'on' or 'off', not {value!r}")
        ruleset = load_ruleset(_bundle.RULE_FILES)
        bundled = "bundled:" + rules_version(_bundle.RULE_FILES)
        _app = (config, EdgeApp(ruleset, secrets, _bundle.CLIENT_JS, consent, edge_cart != "off", bundled,
                                shadow == "on", explain_token))
    return _app[1]


def _maybe_refresh_rules(app: EdgeApp, env: Any, ctx: Any) -> None:
    """At most every NUDGE_RULES_REFRESH_SECONDS (default 30), look for newly published rules in
    the background; this request keeps the rule set it has."""
    raw = str(getattr(env, "NUDGE_RULES_REFRESH_SECONDS", "") or "")
    every = int(raw) if raw.isdigit() and 1 <= int(raw) <= 3600 else RULES_REFRESH
    now = time.monotonic()
    if now - app.rules_checked >= every or app.rules_checked == 0.0:
        app.rules_checked = now
        ctx.waitUntil(_refresh_rules(env, app))
        ctx.waitUntil(_refresh_budgets(env, app))


async def _refresh_rules(env: Any, app: EdgeApp) -> None:
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
    """The named request headers (lower-case names) that are present."""
    out = {}
    for name in names:
        value = js_req.headers.get(name)
        if isinstance(value, str):
            out[name] = value
    return out


def _opts(**kwargs: Any) -> Any:
    return to_js(kwargs, dict_converter=js.Object.fromEntries)


async def handle(request: Any, env: Any, ctx: Any) -> Any:
    """The Worker's fetch handler. Returns a JS Response (the runtime passes it through as is;
    wrapping constructed responses in `workers.Response` trips a Pyodide 0.29 bug)."""
    js_req = getattr(request, "js_object", request)  # workers.Request or a JS Request
    try:
        ctx.passThroughOnException()
    except (JsException, AttributeError):
        pass
    parts = urlsplit(str(js_req.url))
    app = _app_or_none(env)
    if app is not None:
        _maybe_refresh_rules(app, env, ctx)
    if parts.path.startswith(PREFIX):
        return await _endpoint(js_req, env, ctx, parts, app)
    return await _proxy(js_req, env, ctx, parts, app)


_refused: set[str] = set()  # why nudge could not start, each said once per isolate


def _app_or_none(env: Any) -> EdgeApp | None:
    """The isolate's EdgeApp, or None when nudge cannot run: then every response is the origin's,
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

    app: EdgeApp | None = None  # None: pass the origin's response through untouched
    status: str = "untracked"  # "tracked", "untracked" or "automated" (EdgeApp.visitor_status)
    session: Session | None = None
    offer: Redeemed | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    preview: Preview | None = None  # a marketer's preview: that rule at once, nothing stored

    @property
    def tracked(self) -> bool:
        return self.app is not None and self.session is not None and self.status == "tracked"


def _read_visitor(js_req: Any, app: EdgeApp | None, now: int) -> _Visit:
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


async def _within_budget(task: Any, what: str) -> bytes | None:
    """A KV read started alongside the origin fetch, if it lands within KV_BUDGET of the origin."""
    if task is None:
        return None
    try:
        result: bytes | None = await asyncio.wait_for(task, KV_BUDGET)
        return result
    except (asyncio.TimeoutError, JsException, TypeError, ValueError) as exc:
        log.warning("nudge: %s read skipped: %r", what, exc)
        return None


def _cancel(*tasks: Any) -> None:
    for task in tasks:
        if task is not None:
            task.cancel()


async def _proxy(js_req: Any, env: Any, ctx: Any, parts: Any, configured: EdgeApp | None) -> Any:
    now = int(time.time())
    started = time.perf_counter()
    origin = str(env.ORIGIN_URL).rstrip("/")
    visit = _read_visitor(js_req, configured, now)
    app, session = visit.app, visit.session
    extra = app.origin_headers(visit.offer) if app is not None else {}
    # Start the origin fetch and the KV reads together; none waits for another.
    action = cart_action(app.cart, str(js_req.method), parts.path) if visit.tracked and app else None
    cart_body = asyncio.ensure_future(_read_body(js_req.clone(), MAX_CART_BODY)) if action else None
    target = origin + parts.path + (f"?{parts.query}" if parts.query else "")
    cache_key = target if app is not None and _edge_cacheable(js_req, env, extra) else None
    origin_task = asyncio.ensure_future(_fetch_origin(_origin_request(js_req, target, parts, extra), cache_key, ctx))
    profile_task = facts_task = None
    slug, facts = None, None
    own = time.perf_counter() - started  # nudge's own time; waiting for the origin and KV is not
    if visit.tracked and app is not None and session is not None:
        profile_task = asyncio.ensure_future(_kv_get(env, profile_key(session.visitor_id)))
        early = app.ruleset.classifier.classify(parts.path)
        if early.type == "product" and early.product and not early.category:
            slug = early.product  # the category must come from facts learned from the page
            facts = app.catalog.get(slug)
            if facts is None:
                facts_task = asyncio.ensure_future(_kv_get(env, product_key(slug)))
    try:
        origin_resp = await origin_task
    except JsException as exc:
        log.error("nudge: origin fetch failed: %s", exc)
        _cancel(profile_task, facts_task, cart_body)
        return js.Response.new("Origin unreachable", _opts(status=502, headers=_opts(**{"content-type": "text/plain"})))
    origin_resp = _relocated(origin_resp, origin, parts)
    user = origin_resp.headers.get(IDENTITY_HEADER)
    if isinstance(user, str):  # the customer id never reaches the browser
        origin_resp = _without_header(origin_resp, IDENTITY_HEADER)
    if app is None or session is None or not _is_page(js_req, origin_resp):
        _cancel(profile_task, facts_task)
        if action and cart_body is not None and app is not None and session is not None:
            return await _cart_seen(app, js_req, parts, session, action, cart_body, origin_resp, now)
        return origin_resp
    linked = await _link_identity(env, ctx, app, session, user, now) if isinstance(user, str) and visit.tracked else None
    profile = decode_profile(await _within_budget(profile_task, "profile"))
    if facts_task is not None and slug is not None:
        facts = decode_facts(await _within_budget(facts_task, "catalog"))
        if facts is not None:
            app.catalog.remember(slug, facts)
    try:
        resumed = time.perf_counter()
        csp = origin_resp.headers.get("content-security-policy")
        injection = plan_injection(str(csp) if isinstance(csp, str) else None, f"{parts.scheme}://{parts.netloc}")
        plan = app.plan_page(_page_request(js_req, parts), session, visit.offer, profile, now,
                             tracked=visit.tracked, cookies=visit.cookies, facts=facts, injection=injection,
                             preview=visit.preview)
        if not _absent(origin_resp.headers.get(OFFER_APPLIED_HEADER)):
            plan.prices = None  # the shop priced the page with the offer itself
        _record(env, ctx, app, plan.events, now)
        learn = _Learner(app, env, ctx, plan.learn) if plan.learn and visit.tracked else None
        own += time.perf_counter() - resumed
        rewritten = _rewrite(origin_resp, plan, learn, own)
        print(plan.log_line(visit.status, app.rules_version, round(own * 1000, 2)))  # one line per page
        # One profile write per request at most (KV: one write per second per key, last one wins).
        if plan.profile_write is not None:
            write = dataclasses.replace(plan.profile_write, identity=linked or plan.profile_write.identity)
            ctx.waitUntil(_kv_put(env, profile_key(session.visitor_id), encode_profile(write)))
        elif linked:
            ctx.waitUntil(_record_key_event(env, session.visitor_id, KeyEvent(), now, identity=linked))
        return rewritten
    except Exception:  # fail open
        log.exception("nudge: personalizing the page failed; passing it through")
        return origin_resp


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
    )


def _edge_cacheable(js_req: Any, env: Any, extra: dict[str, str]) -> bool:
    """Whether the page's base HTML may come from the edge cache, keyed by the origin URL (no
    cookies in it). Not for other methods, a visitor with an offer (the origin prices for them),
    credentials or ranges, nor with NUDGE_EDGE_CACHE=off."""
    if str(getattr(env, "NUDGE_EDGE_CACHE", "") or "on") != "on" or str(js_req.method) != "GET" or extra:
        return False
    return _absent(js_req.headers.get("range")) and _absent(js_req.headers.get("authorization"))


def _shareable(resp: Any) -> bool:
    """The origin says anyone may be served this HTML: 200, `public` or `s-maxage`, no cookie of
    its own, not varying on cookies. Only then is it kept in the edge cache."""
    cache_control = str(resp.headers.get("cache-control") or "").lower()
    vary = str(resp.headers.get("vary") or "").lower()
    content_type = str(resp.headers.get("content-type") or "").lower()
    return (int(resp.status) == 200 and content_type.startswith("text/html")
            and ("public" in cache_control or "s-maxage" in cache_control)
            and not any(d in cache_control for d in ("private", "no-store", "no-cache"))
            and _absent(resp.headers.get("set-cookie")) and "cookie" not in vary and "*" not in vary)


async def _fetch_origin(request: Any, cache_key: str | None, ctx: Any) -> Any:
    """The origin's response, from the edge cache when the origin allowed it to be shared.
    Personalization is applied per request on top, so a cached page is never anyone's page."""
    cache = getattr(getattr(js, "caches", None), "default", None) if cache_key else None
    if cache is None or _absent(cache):
        return await js.fetch(request)
    try:
        hit = await cache.match(cache_key)
        if not _absent(hit):
            return hit
    except JsException as exc:
        log.warning("nudge: edge cache read failed: %s", exc)
    resp = await js.fetch(request)
    if _shareable(resp):
        try:
            ctx.waitUntil(cache.put(cache_key, resp.clone()))
        except JsException as exc:
            log.warning("nudge: edge cache write failed: %s", exc)
    return resp


def _origin_request(js_req: Any, target: str, parts: Any, extra: dict[str, str]) -> Any:
    headers = js.Headers.new(js_req.headers)
    for name in list(headers.keys()):
        if name.lower().startswith("x-nudge-") or name.lower() in _HOP_HEADERS:
            headers.delete(name)
    cookie = without_our_cookies(js_req.headers.get("cookie"))
    if cookie:
        headers.set("cookie", cookie)
    else:
        headers.delete("cookie")
    headers.set("x-forwarded-host", parts.netloc)
    headers.set("x-forwarded-proto", parts.scheme)
    for name, value in extra.items():
        headers.set(name, value)
    method = str(js_req.method)
    if method in ("GET", "HEAD"):
        return js.Request.new(target, _opts(method=method, headers=headers, redirect="manual"))
    return js.Request.new(
        target, _opts(method=method, headers=headers, redirect="manual", body=js_req.body, duplex="half")
    )


def _relocated(resp: Any, origin: str, parts: Any) -> Any:
    """Rewrites an origin redirect that points at the origin's own address to our host (never to
    a Location a browser would read as another host: pages.own_location)."""
    location = resp.headers.get("location")
    moved = own_location(str(location), origin, f"{parts.scheme}://{parts.netloc}") if location else None
    if moved is None:
        return resp
    headers = js.Headers.new(resp.headers)
    headers.set("location", moved)
    return js.Response.new(resp.body, _opts(status=resp.status, statusText=resp.statusText, headers=headers))


async def _cart_seen(app: EdgeApp, js_req: Any, parts: Any, session: Session, action: str,
                     cart_body: Any, origin_resp: Any, now: int) -> Any:
    """A POST to the shop's cart endpoint the origin accepted: the session's cart follows it."""
    try:
        body = await cart_body
        change = parse_cart_body(app.cart, action, body or b"", js_req.headers.get("content-type")) \
            if int(origin_resp.status) < 400 and app.cart else None
        if change is None:
            return origin_resp
        apply_cart_change(session, change, now, app.catalog.price_of(change.item))
        headers = js.Headers.new(origin_resp.headers)
        headers.append("set-cookie", app.session_cookie(session, not is_local_http(parts.scheme, parts.netloc)))
        return js.Response.new(origin_resp.body, _opts(status=origin_resp.status, statusText=origin_resp.statusText,
                                                       headers=headers))
    except (JsException, ValueError, TypeError):
        log.exception("nudge: reading a cart change failed; response passed through")
        return origin_resp


def _without_header(resp: Any, name: str) -> Any:
    headers = js.Headers.new(resp.headers)
    headers.delete(name)
    return js.Response.new(resp.body, _opts(status=resp.status, statusText=resp.statusText, headers=headers))


async def _link_identity(env: Any, ctx: Any, app: EdgeApp, session: Session, user: str, now: int) -> str | None:
    """Links this browser to the customer's profile: the first device seen for a customer owns the
    link; later devices adopt its visitor id, so every device shares one KV profile. Returns the
    hash when the profile must record a new link (the caller folds it into its one profile write)."""
    hashed = app.identity_of(user)
    if hashed is None or session.identity == short(hashed):
        return None  # unusable id, or already linked in this session: no KV traffic
    try:
        owner = await _kv_get(env, identity_key(hashed))
    except JsException as exc:
        log.error("nudge: identity lookup failed: %s", exc)
        return None
    owner_id = owner.decode("ascii", "replace") if owner else None
    session.identity = short(hashed)
    if owner_id and len(owner_id) == 16 and owner_id != session.visitor_id:
        try:
            session.visitor = bytes.fromhex(owner_id)
        except ValueError:
            session.identity = None
        return None
    if owner_id:
        return None
    ctx.waitUntil(_kv_put(env, identity_key(hashed), session.visitor_id.encode("ascii")))
    return hashed


def _is_page(js_req: Any, resp: Any) -> bool:
    """Only a whole 200 text/html answer to a GET is rewritten; ranges, downloads and responses the
    origin marks `no-transform` pass through byte-identical."""
    content_type = str(resp.headers.get("content-type") or "").lower()
    cache_control = str(resp.headers.get("cache-control") or "").lower()
    disposition = str(resp.headers.get("content-disposition") or "").lower()
    return (
        str(js_req.method) == "GET"
        and int(resp.status) == 200
        and content_type.startswith("text/html")
        and not _absent(resp.body)
        and "no-transform" not in cache_control
        and not disposition.startswith("attachment")
        and _absent(js_req.headers.get("range"))
    )


def _absent(value: Any) -> bool:
    """JS null/undefined as Pyodide hands them over (None, or jsnull where kept apart)."""
    return value is None or value is jsnull


class _Injector:
    """An HTMLRewriter element handler that injects once, and never lets an error break the page."""

    def __init__(self, prepend: str, append: str) -> None:
        self.prepend, self.append = prepend, append

    def element(self, el: Any) -> None:
        try:
            html = _opts(html=True)
            if self.prepend:
                el.prepend(self.prepend, html)
            if self.append:
                el.append(self.append, html)
        except Exception:  # an error here would break the stream mid-page: never let it out
            log.exception("nudge: injection failed; page left as is")
        self.prepend = self.append = ""


class _SlotFiller:
    """Fills the first element marked `data-nudge-slot="name"`: replaces its content (the site's
    own content is the fallback, so it stays when no rule fills the slot) or appends a badge.
    Whole elements only: HTMLRewriter delivers text in arbitrary chunks."""

    def __init__(self, mode: str, html: str) -> None:
        self.mode, self.html = mode, html

    def element(self, el: Any) -> None:
        if not self.html:
            return
        try:
            if self.mode == "append":
                el.append(self.html, _opts(html=True))
            else:
                el.setInnerContent(self.html, _opts(html=True))
        except Exception:
            log.exception("nudge: filling a slot failed; slot left as is")
        self.html = ""


class _PriceRewriter:
    """Shows marked prices with the visitor's discount, for shops that do not read X-Nudge-Offer:
    `data-nudge-price="129.00"` or schema.org microdata `itemprop="price" content="129.00"`. The
    value comes from the attribute and the element's whole content is replaced. A price marked
    `data-nudge-category="..."` is rewritten on any page when that is the offer's category (and
    never when it is another); an unmarked one only on pages of the offer's category."""

    def __init__(self, offer: Redeemed, currency: str, page_matches: bool) -> None:
        self.offer, self.currency, self.page_matches = offer, currency, page_matches

    def element(self, el: Any) -> None:
        try:
            if isinstance(el.getAttribute("data-nudge-priced"), str):
                return  # both selectors matched this element: once is enough
            category = el.getAttribute("data-nudge-category")
            if not (category == self.offer.category if isinstance(category, str) else self.page_matches):
                return
            marked = el.getAttribute("data-nudge-price")
            if not isinstance(marked, str):
                if str(el.tagName).lower() in ("meta", "link"):
                    return  # microdata without visible text
                marked = el.getAttribute("content")
            prices = self.offer.price_after(marked if isinstance(marked, str) else None)
            if prices is None:
                return
            el.setInnerContent(render.price(prices[0], prices[1], self.currency), _opts(html=True))
            el.setAttribute("data-nudge-priced", "")
            if isinstance(el.getAttribute("content"), str):
                el.setAttribute("content", f"{prices[1]:.2f}")
        except Exception:
            log.exception("nudge: rewriting a price failed; left as is")


class _Learner:
    """Reads a product page's JSON-LD and og/product meta tags as they stream by; at the end of the
    document the facts go to the isolate's catalog and, when new, to KV."""

    def __init__(self, app: EdgeApp, env: Any, ctx: Any, slug: str) -> None:
        self.app, self.env, self.ctx, self.slug = app, env, ctx, slug
        self.collector = ProductFactsCollector()

    def text(self, chunk: Any) -> None:
        try:
            self.collector.feed_json_ld(str(chunk.text), bool(chunk.lastInTextNode))
        except Exception:  # never break the stream over a product fact
            log.exception("nudge: reading JSON-LD failed")

    def element(self, el: Any) -> None:
        try:
            prop, content = el.getAttribute("property"), el.getAttribute("content")
            self.collector.feed_meta(prop if isinstance(prop, str) else None,
                                     content if isinstance(content, str) else None)
        except Exception:
            log.exception("nudge: reading meta tags failed")

    def finish(self) -> None:
        facts = self.collector.facts()
        if facts is not None and self.app.catalog.remember(self.slug, facts):
            self.ctx.waitUntil(_kv_put(self.env, product_key(self.slug), encode_facts(facts), CATALOG_TTL))


class _DocumentEnd:
    def __init__(self, jar: _ProxyJar, learn: _Learner | None) -> None:
        self.jar, self.learn = jar, learn

    def end(self, _end: Any) -> None:
        try:
            if self.learn is not None:
                self.learn.finish()
        except Exception:
            log.exception("nudge: learning product facts failed")
        self.jar.close()


class _ProxyJar:
    """Proxies handed to HTMLRewriter for one response. They must outlive `fetch` (the body streams
    later), so they are destroyed after the document ends, or swept if the stream was abandoned."""

    open: list[_ProxyJar] = []
    MAX_AGE = 120.0

    def __init__(self) -> None:
        self.proxies: list[Any] = []
        self.born = time.monotonic()
        self.done = False
        _ProxyJar.sweep()
        _ProxyJar.open.append(self)

    def proxy(self, obj: Any) -> Any:
        p = create_proxy(obj)
        self.proxies.append(p)
        return p

    def close(self) -> None:
        self.done = True  # destroyed on the next sweep, outside the handler that is running now

    @classmethod
    def sweep(cls) -> None:
        now = time.monotonic()
        keep = []
        for jar in cls.open:
            if jar.done or now - jar.born > cls.MAX_AGE:
                for p in jar.proxies:
                    p.destroy()
            else:
                keep.append(jar)
        cls.open = keep


def _rewrite(origin_resp: Any, plan: PagePlan, learn: _Learner | None = None, own: float = 0.0) -> Any:
    headers = js.Headers.new(origin_resp.headers)
    # nudge's own time before the body streams (reading the visitor, deciding, rendering)
    headers.append("server-timing", f'nudge;dur={own * 1000:.2f};desc="nudge decide+render"')
    headers.delete("content-length")
    headers.set("cache-control", "private, no-store")  # personalized: no shared cache may keep it
    headers.append("vary", "Cookie")
    for cookie in plan.set_cookies:
        headers.append("set-cookie", cookie)
    base = js.Response.new(
        origin_resp.body, _opts(status=origin_resp.status, statusText=origin_resp.statusText, headers=headers)
    )
    jar = _ProxyJar()
    rewriter = (
        js.HTMLRewriter.new()
        .on("head", jar.proxy(_Injector("", plan.head)))
        .on("body", jar.proxy(_Injector(plan.body_start, plan.body_end)))
    )
    for slot, (mode, html) in plan.slots.items():  # only the slots a rule fills: few handler calls
        rewriter = rewriter.on(f'[data-nudge-slot="{slot}"]', jar.proxy(_SlotFiller(mode, html)))
    if plan.prices is not None:  # an offer applies to this page: show its prices discounted
        prices = jar.proxy(_PriceRewriter(plan.prices, plan.currency, plan.page_category == plan.prices.category))
        rewriter = rewriter.on("[data-nudge-price]", prices).on('[itemprop="price"]', prices)
    if learn is not None:  # only product pages whose facts nudge does not know yet
        reader = jar.proxy(learn)
        rewriter = rewriter.on('script[type="application/ld+json"]', reader).on("meta[property]", reader)
    return rewriter.onDocument(jar.proxy(_DocumentEnd(jar, learn))).transform(base)


# -- nudge's own endpoints ------------------------------------------------------------------------


async def _endpoint(js_req: Any, env: Any, ctx: Any, parts: Any, app: EdgeApp | None) -> Any:
    now = int(time.time())
    if app is None:
        return _reply(Reply(503, '{"error": "nudge is not configured"}'))
    secure = not is_local_http(parts.scheme, parts.netloc)
    path = parts.path
    if path == CLIENT_PATH:
        return _reply(app.client())
    if path == STYLE_PATH:
        return _reply(app.stylesheet())
    if path == HEALTH_PATH:
        return _reply(app.health())
    if path not in (BEACON_PATH, REDEEM_PATH, FORGET_PATH, EXPLAIN_PATH, PREVIEW_PATH):
        return _reply(Reply(404, '{"error": "not found"}'))
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
    used = 0
    if path == REDEEM_PATH:
        rule = app.offer_rule(parts.query, session, now)
        if rule is not None and rule.offer is not None and rule.offer.max_per_day:
            used = await _budget_used(env, rule.id, now)
        reply, event = app.redeem(parts.query, session, now, secure, app.active_offer(cookies, now), used)
    else:
        body = await _read_body(js_req, MAX_BEACON_BODY)
        if body is None:
            return _reply(Reply(413, '{"error": "body larger than 8192 bytes"}'))
        beacon = app.read_beacon(str(js_req.method), body, js_req.headers.get("content-type"))
        if isinstance(beacon, Reply):
            return _reply(beacon)
        for item in beacon.events:
            if item.type == "identify" and item.user:
                linked = await _link_identity(env, ctx, app, session, item.user, now) or linked
        reply, event = app.apply_beacon(beacon, session, now, secure)
    if event or linked:  # one read-merge-write of the profile per request
        ctx.waitUntil(_record_key_event(env, session.visitor_id, event, now, identity=linked))
    _record(env, ctx, app, event.events, now)
    if event.budget:
        ctx.waitUntil(_kv_put(env, budget_key(event.budget, now), str(used + 1).encode("ascii"), BUDGET_TTL))
    return _reply(reply)


async def _budget_used(env: Any, rule_id: str, now: int) -> int:
    """Redemptions of a rule's offer today, as KV counts them (0 when unreadable: fail open)."""
    try:
        raw = await _kv_get(env, budget_key(rule_id, now))
    except JsException as exc:
        log.error("nudge: budget read failed: %s", exc)
        return 0
    text = raw.decode("ascii", "replace") if raw else "0"
    return int(text) if text.isdigit() else 0


async def _refresh_budgets(env: Any, app: EdgeApp) -> None:
    """Marks the offers whose daily budget ran out (seen by other isolates), so they stop showing."""
    now = int(time.time())
    for rule in app.ruleset.rules:
        if rule.offer is not None and rule.offer.max_per_day and rule.id not in app.spent_today(now):
            app.budget_spent(rule.id, await _budget_used(env, rule.id, now), now)


async def _explain(js_req: Any, env: Any, app: EdgeApp, parts: Any, cookies: dict[str, str], now: int) -> Reply:
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


async def _forget(js_req: Any, env: Any, app: EdgeApp, cookies: dict[str, str], secure: bool) -> Reply:
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
        profile = decode_profile(await _kv_get(env, key))
        erased = profile is not None
        if profile is not None and profile.identity:
            await env.NUDGE_KV.delete(identity_key(profile.identity))
            identity = True
        await env.NUDGE_KV.delete(key)
    return app.forget(str(js_req.method), cookies, visitor, erased, secure, identity)


def _reply(reply: Reply) -> Any:
    headers = js.Headers.new()
    headers.set("content-type", reply.content_type)
    for name, value in reply.headers:
        headers.append(name, value)
    body = reply.body if reply.status not in (204, 304) else None
    return js.Response.new(body, _opts(status=reply.status, headers=headers))


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


def _record(env: Any, ctx: Any, app: EdgeApp, events: list[Event], now: int) -> None:
    """Writes measurement events to Analytics Engine (NUDGE_EVENTS) after the response is sent.
    Without the binding nothing is recorded; a failing write is logged, never raised."""
    if not events:
        return
    dataset = getattr(env, "NUDGE_EVENTS", None)
    if _absent(dataset):
        return
    ctx.waitUntil(_write_points(dataset, [e.data_point(app.rules_version, now) for e in events]))


async def _write_points(dataset: Any, points: list[dict[str, Any]]) -> None:
    for point in points:
        try:
            dataset.writeDataPoint(to_js(point, dict_converter=js.Object.fromEntries))
        except Exception as exc:  # measurement must never cost the shopper anything
            log.error("nudge: event write failed: %s", exc)


# -- KV -------------------------------------------------------------------------------------------


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
    return _to_bytes(await env.NUDGE_KV.get(key, "arrayBuffer"))


def _profile_ttl(env: Any) -> int:
    """Seconds a profile (and identity link) lives in KV: NUDGE_PROFILE_TTL_DAYS, default 400."""
    days = str(getattr(env, "NUDGE_PROFILE_TTL_DAYS", "") or "")
    return int(days) * 86_400 if days.isdigit() and 1 <= int(days) <= 3650 else PROFILE_TTL


async def _kv_put(env: Any, key: str, value: bytes, ttl: int | None = None) -> None:
    """Writes a KV value (profiles and identity links by default live NUDGE_PROFILE_TTL_DAYS)."""
    try:
        await env.NUDGE_KV.put(key, to_js(value), _opts(expirationTtl=ttl or _profile_ttl(env)))
    except JsException as exc:
        log.error("nudge: profile write failed: %s", exc)


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
