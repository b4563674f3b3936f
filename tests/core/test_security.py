"""Security checks in plain Python: forged, tampered and replayed cookies and offer tokens,
oversized input, header injection and XSS through rule content, product JSON-LD and URL-derived
values, open redirects, timing-safe comparison, secrets kept out of logs, and no default secret.
(tests/runtime/test_security.py checks the boundary: pass-through without a secret, the runtime's
logs, origin redirects, huge Cookie headers.)"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import re
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import msgpack
import pytest

from nudge import endpoint_replies, redemption, signing
from nudge.engine import Engine, PageRequest, Reply
from nudge.isolate_memory import IsolateMemory
from nudge.offers import TOKEN_TTL, OfferTokens, Redeemed
from nudge.rules.load import RuleError, load_ruleset
from nudge.signing import BadData, Signer, parse_secrets
from nudge.visitor.attributes import RequestContext
from nudge.visitor.cookies import MAX_HEADER, parse_cookies, without_our_cookies
from nudge.visitor.product_facts import ProductFactsCollector
from nudge.visitor.session import MAX_COOKIE_VALUE, VISIT_TIMEOUT, Session
from nudge.visitor.tracking import is_closed, record_page_view

from .factories import NOW, PRODUCTS, ROOT, SECRET, cookie_value, make_app, repo_rule_files, visit

APP = make_app()
RULE = "sneakers-exit-intent"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
EXAMPLE_SECRET = next(line.split("=", 1)[1] for line in (ROOT / ".dev.vars.example").read_text().splitlines()
                      if line.startswith("NUDGE_SECRET="))


def req(path: str, query: str = "", referrer: str | None = None) -> PageRequest:
    return PageRequest(RequestContext(path=path), query, "shop.example", referrer, True)


def a_session_cookie() -> tuple[Session, str]:
    s = Session.fresh(NOW, b"visitor1")
    record_page_view(s, APP.ruleset.classifier.classify("/collections/sneakers"), NOW)
    return s, APP.codec.encode(s)


def redeem_link(session_paths: list[str] | None = None) -> tuple[Session, str]:
    session, body = visit(APP, session_paths or ["/collections/sneakers", *PRODUCTS], dwell=300)
    token = unquote(re.search(r'redeem\?t=([^"]+)"', body).group(1))  # type: ignore[union-attr]
    return session, token


# -- session cookies: tampered, forged, replayed ------------------------------------------------


def test_every_one_character_change_to_a_session_cookie_is_a_fresh_session() -> None:
    s, good = a_session_cookie()
    assert APP.load_session({"nudge": good}, NOW).visitor == s.visitor
    forged = {good[:i] + c + good[i + 1:] for i in range(len(good)) for c in (B64[(B64.find(good[i]) + 1) % 64], ".")}
    forged |= {good[:i] for i in range(len(good))} | {good + "A", good + "=", "." + good}
    for value in forged - {good}:
        back = APP.load_session({"nudge": value}, NOW)
        assert back.is_new and back.visitor != s.visitor, value


@pytest.mark.parametrize("guess", [b"", EXAMPLE_SECRET.encode(), b"secret", b"nudge", b"change-me", b"NUDGE_SECRET"])
def test_cookies_signed_with_a_guessable_secret_are_refused(guess: bytes) -> None:
    """Nothing signs with a default: a cookie made with the public example secret or an empty key
    is a stranger's."""
    s, _ = a_session_cookie()
    s.cart, s.orders = {"SNK-1": 3}, 9
    forged = {"nudge": Signer([guess], "session").sign(msgpack.packb(_wire(s), use_bin_type=True))}
    assert APP.load_session(forged, NOW).is_new
    offer = OfferTokens(Signer([guess], "offer-token"), Signer([guess], "offer-cookie"))
    forged = offer.cookie(Redeemed(RULE, "FREE", 90, "sneakers", NOW + 99))
    assert APP.active_offer({"nudge_offer": forged}, NOW) is None


def _wire(s: Session) -> list[Any]:
    from nudge.visitor.session import _to_wire

    return _to_wire(s)


def test_a_value_signed_for_another_purpose_is_refused_everywhere() -> None:
    session, token = redeem_link()
    reply, _ = APP.redeem(IsolateMemory(), f"t={quote(token)}", session, NOW + 10, True)
    offer_cookie = dict(cookie_value(v) for k, v in reply.headers if k == "Set-Cookie")["nudge_offer"]
    preview = APP.previews.mint(RULE, 0, NOW)
    _, session_cookie = a_session_cookie()
    for value in (token, offer_cookie, preview):
        assert APP.load_session({"nudge": value}, NOW).is_new
    for value in (token, session_cookie, preview):
        assert APP.active_offer({"nudge_offer": value}, NOW) is None
    for value in (token, session_cookie, offer_cookie):
        assert APP.preview_of({"nudge_preview": value}, NOW) is None
    for value in (offer_cookie, preview, session_cookie):
        assert redemption.offer_rule(APP, f"t={quote(value)}", session, NOW) is None


def test_an_old_session_cookie_replayed_is_a_new_visit_of_the_same_visitor() -> None:
    """What the design promises for an old (validly signed) cookie: after 30 idle minutes it starts
    a new visit; the visitor id and cart carry over, this visit's counts and caps do not."""
    s, value = a_session_cookie()
    s.shown[123] = 1
    value = APP.codec.encode(s)
    later = APP.load_session({"nudge": value}, s.last_seen + VISIT_TIMEOUT + 1)
    assert later.is_new and later.visitor == s.visitor and later.pages == 0 and not later.shown


# -- offer tokens and the offer cookie: forged, foreign, expired, replayed --------------------------


def _location(reply: Reply) -> str:
    return dict(reply.headers)["Location"]


def test_forged_foreign_expired_and_misused_offer_tokens_get_no_discount() -> None:
    session, token = redeem_link()
    guessed = OfferTokens(Signer([EXAMPLE_SECRET.encode()], "offer-token"), Signer([b"x"], "offer-cookie"))
    cases = [
        (f"t={quote(token)}", Session.fresh(NOW, b"stranger"), NOW + 10),  # another visitor's link
        (f"t={quote(token)}", session, NOW + TOKEN_TTL + 60),  # an hour after the page
        (f"t={quote(guessed.mint(APP.ruleset.rule(RULE), session.visitor_id, NOW))}", session, NOW),  # type: ignore[arg-type]
        (f"t={quote(token[:-1])}", session, NOW),
        (f"t={quote(token)}&t=other", Session.fresh(NOW, b"stranger"), NOW),
    ]
    for query, who, now in cases:
        reply, event = APP.redeem(IsolateMemory(), query, who, now, True)
        assert reply.status == 303 and _location(reply) == "/" and not event, query
        assert [v for k, v in reply.headers if k == "Set-Cookie"] == [
            "nudge_msg=offer-expired; Path=/; Max-Age=120; SameSite=Lax; HttpOnly; Secure"]


def test_a_redeemed_offer_is_single_use_and_its_cookie_cannot_be_replayed_after_it_ends() -> None:
    session, token = redeem_link()
    first, event = APP.redeem(IsolateMemory(), f"t={quote(token)}", session, NOW + 10, True)
    assert event.redeemed == 1 and is_closed(session, RULE)
    jar = dict(cookie_value(v) for k, v in first.headers if k == "Set-Cookie")
    offer = APP.active_offer(jar, NOW + 11)
    assert offer is not None
    # the same click again (the session now records the redemption): no second offer
    after = APP.load_session(jar, NOW + 12)
    again, event = APP.redeem(IsolateMemory(), f"t={quote(token)}", after, NOW + 12, True, active=offer)
    assert not event and not any(k == "Set-Cookie" for k, _ in again.headers)
    gone, event = APP.redeem(IsolateMemory(), f"t={quote(token)}", after, NOW + 13, True, active=None)
    assert not event and dict(gone.headers)["Set-Cookie"].startswith("nudge_msg=offer-used;")
    # the offer cookie says when it ends, signed: a browser that keeps sending it gets nothing
    assert APP.active_offer(jar, offer.expires) is None and APP.origin_headers(None) == {}


def test_an_offer_cookie_edited_to_a_bigger_discount_is_refused() -> None:
    value = APP.offers.cookie(Redeemed(RULE, "SNEAKERS10", 10, "sneakers", NOW + 3600))
    body, _, tag = value.rpartition(".")
    fields = msgpack.unpackb(signing.b64decode(body))
    fields[2] = 90
    edited = signing.b64encode(msgpack.packb(fields)) + "." + tag
    assert APP.active_offer({"nudge_offer": edited}, NOW) is None


# -- oversized input ----------------------------------------------------------------------------------


def test_an_oversized_cookie_header_is_ignored_and_many_cookies_are_fine() -> None:
    _, ours = a_session_cookie()
    many = "; ".join(f"c{i}=v" for i in range(1000)) + f"; nudge={ours}"
    assert len(many) < MAX_HEADER and parse_cookies(many)["nudge"] == ours
    assert without_our_cookies(many) == "; ".join(f"c{i}=v" for i in range(1000))
    huge = "x=" + "y" * MAX_HEADER + f"; nudge={ours}"
    assert parse_cookies(huge) == {}  # not parsed at all: a fresh session, never an error
    assert APP.load_session(parse_cookies(huge), NOW).is_new


def test_oversized_signed_values_are_refused_before_any_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hmac(self: Signer, token: str) -> bytes:
        raise AssertionError(f"an oversized value ({len(token)} chars) reached the signature check")

    monkeypatch.setattr(Signer, "unsign", no_hmac)
    assert APP.load_session({"nudge": "A" * (MAX_COOKIE_VALUE + 1)}, NOW).is_new
    assert APP.active_offer({"nudge_offer": "A" * 513}, NOW) is None
    assert APP.preview_of({"nudge_preview": "A" * 513}, NOW) is None
    assert redemption.offer_rule(APP, "t=" + "A" * 513, Session.fresh(NOW), NOW) is None


# -- header injection ---------------------------------------------------------------------------------

RULE_TOML = 'id = "r1"\n[action]\nkind = "modal"\ntitle = "Hi"\n'
CRLF = ["\r\n", "\n", "\r", "\x00", "\u2028"]


def load(extra: str) -> Any:
    return load_ruleset({"pages.toml": repo_rule_files()["pages.toml"], "r.toml": RULE_TOML + extra})


@pytest.mark.parametrize("where", ["url", "redirect", "glob", "category"])
@pytest.mark.parametrize("breaker", CRLF)
def test_line_breaks_in_rule_urls_and_offer_fields_are_refused(where: str, breaker: str) -> None:
    value = json.dumps(f"/x{breaker}Set-Cookie: a=b")  # a TOML basic string with the escape
    extra = {
        "url": f"url = {value}\n",
        "redirect": f'[offer]\ncode = "X1"\npercent = 10\ncategory = "s"\nredirect = {value}\n',
        "glob": "",
        "category": f'[offer]\ncode = "X1"\npercent = 10\ncategory = {json.dumps("s" + breaker + "x")}\n'
                    'redirect = "/"\n',
    }[where]
    text = RULE_TOML.replace('id = "r1"\n', f'id = "r1"\npages = [{value}]\n') if where == "glob" else RULE_TOML + extra
    with pytest.raises(RuleError):
        load_ruleset({"pages.toml": repo_rule_files()["pages.toml"], "r.toml": text})


def all_replies(app: Engine, query: str) -> list[Reply]:
    session, token = redeem_link()
    return [
        app.redeem(IsolateMemory(), query, session, NOW, True)[0],
        app.redeem(IsolateMemory(), f"t={quote(token)}&{query}", session, NOW + 10, True)[0],
        app.start_preview(query, NOW, True),
        app.start_preview(f"t={app.previews.mint(RULE, 0, NOW)}&{query}", NOW, True),
        app.start_preview(f"end=1&{query}", NOW, True),
        app.explain(IsolateMemory(), query, session, None, NOW, "tracked", RequestContext()),
        app.forget("POST", {"nudge": "x"}, None, False, True),
        refused_beacon(app, query.encode()),
    ]


def refused_beacon(app: Engine, body: bytes) -> Reply:
    reply = app.read_beacon("POST", body, "application/json")
    assert isinstance(reply, Reply), "a beacon that is not a JSON object is refused"
    return reply


@pytest.mark.parametrize("query", [
    "path=/x%0d%0aSet-Cookie:%20a=b", "path=%0d%0aLocation:%20//evil.example", "t=a%0d%0ab", "path=/x%00y",
    "token=x%0d%0a&path=/", "path=/%E2%80%A8x", "redirect=//evil.example%0d%0a",
])
def test_no_reply_header_carries_a_line_break_whatever_the_query(query: str) -> None:
    app = Engine(APP.ruleset, SECRET, "", explain_token="qa")
    for reply in all_replies(app, query):
        for name, value in reply.headers:
            assert not any(c in name + value for c in "\r\n\x00\u2028"), (name, value)


def test_every_repo_offer_travels_in_a_well_formed_header() -> None:
    for rule in APP.ruleset.rules:
        if rule.offer:
            header = Redeemed(rule.id, rule.offer.code, rule.offer.percent, rule.offer.category, NOW,
                              rule.offer.amount).header_value()
            assert re.fullmatch(r"code=[A-Z0-9_-]+; (percent=\d+|amount=[\d.]+); "
                                r"category=[^;=,\r\n]+; expires=\d+", header)


# -- XSS: rule text, product JSON-LD, URL-derived values ------------------------------------------------

SCRIPT = '</script><script>alert(1)</script>'
ATTR = '"><img src=x onerror=alert(1)>'
HOSTILE_RULES = {
    "x-modal.toml": f'id = "x-modal"\n[action]\nkind = "modal"\n'
                    f'title = {json.dumps(SCRIPT)}\nbody = {json.dumps(ATTR)}\n'
                    f'button = {json.dumps(SCRIPT)}\ndismiss = {json.dumps(ATTR)}\nurl = "/x?a=%22%3E"\n',
    "x-banner.toml": f'id = "x-banner"\n[action]\nkind = "banner"\n'
                     f'title = {json.dumps(ATTR + " {{ page.category }}")}\n'
                     f'body = "{{{{ utm.source }}}} {{{{ referrer.host }}}} {{{{ page.path }}}}"\n',
    "x-badge.toml": 'id = "x-badge"\n[action]\nkind = "badge"\nslot = "b"\ntitle = "{{ page.product }}"\n',
}
HOSTILE_APP = Engine(load_ruleset({**repo_rule_files(), **HOSTILE_RULES}), SECRET, "")


def injected(plan: Any) -> str:
    return plan.head + plan.body_start + plan.body_end + "".join(h for _, h in plan.slots.values())


def assert_no_markup_from(html: str) -> None:
    for raw in ("<script>alert", "<img src=x", '"><img'):  # as text (&lt;img ...) it is harmless
        assert raw not in html, (raw, html)


def test_rule_text_is_escaped_wherever_it_is_shown() -> None:
    plan = HOSTILE_APP.plan_page(IsolateMemory(), req("/"), Session.fresh(NOW, b"visitor1"), None, None, NOW)
    html = injected(plan)
    assert "x-modal" in html and "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert_no_markup_from(html)


def test_product_json_ld_is_data_never_markup() -> None:
    collector = ProductFactsCollector()
    collector.feed_json_ld(json.dumps({"@type": "Product", "sku": "P-1", "name": SCRIPT + ATTR,
                                       "category": "Shoes > <img src=x onerror=alert(1)", "brand": ATTR}), True)
    facts = collector.facts()
    assert facts is not None and facts.category == "<img src=x onerror=alert(1)"  # kept as data...
    visitor = Session.fresh(NOW, b"visitor1")
    plan = HOSTILE_APP.plan_page(IsolateMemory(), req("/products/p-1"), visitor, None, None, NOW, facts=facts)
    html = injected(plan)
    assert plan.page.category == facts.category and "&lt;img src=x onerror=alert(1)" in html  # ...shown escaped
    assert "\\u003cimg src=x" in plan.body_end  # and in the page config, as JSON that cannot end its script
    assert_no_markup_from(html)


def test_url_derived_values_are_escaped_in_pages_and_in_explain() -> None:
    path = "/collections/" + quote(SCRIPT + ATTR, safe="") + "/products/" + quote(ATTR, safe="")
    query = "q=" + quote(SCRIPT) + "&utm_source=" + quote(ATTR) + "&utm_campaign=" + quote(SCRIPT)
    plan = HOSTILE_APP.plan_page(IsolateMemory(), req(path, query, 'https://x"><script>alert(1)</script>.example/'),
                                 Session.fresh(NOW, b"visitor1"), None, None, NOW)
    html = injected(plan)
    assert plan.page.category and "<script>" in plan.page.category and "&lt;script&gt;" in html
    assert_no_markup_from(html)
    app = Engine(HOSTILE_APP.ruleset, SECRET, "", explain_token="qa")
    explained = app.explain(IsolateMemory(), f"token=qa&path={quote(path)}", plan.session, None, NOW, "tracked",
                            RequestContext())
    assert explained.status == 200 and "&lt;script&gt;" in explained.body
    assert_no_markup_from(explained.body)


# -- open redirects ------------------------------------------------------------------------------------

EVIL = ["//evil.example", "/\\evil.example", "https://evil.example", "http:evil.example", "\\\\evil.example",
        "/\t/evil.example", " //evil.example", "%2F%2Fevil.example", "%2f%5cevil.example", "javascript:alert(1)",
        "/%0a/evil.example", "//evil.example%2F..", "///evil.example", "https:/\\evil.example"]


def lands_on_the_shop(location: str) -> bool:
    """Whether a browser following this Location stays on shop.example (it drops tabs and
    newlines and reads a backslash as a slash)."""
    cleaned = "".join(c for c in location if c not in "\t\n\r").strip().replace("\\", "/")
    return urlsplit(urljoin("https://shop.example/here", cleaned)).netloc == "shop.example"


@pytest.mark.parametrize("target", EVIL + ["/%2F%2Fevil.example", "/collections/sneakers?x=//evil.example"])
def test_preview_links_redirect_only_within_the_shop(target: str) -> None:
    for encoded in (target, quote(target, safe="")):
        reply = APP.start_preview(f"t={APP.previews.mint(RULE, 0, NOW)}&path={encoded}", NOW, True)
        assert reply.status == 303 and lands_on_the_shop(_location(reply)), (encoded, _location(reply))


@pytest.mark.parametrize("target", EVIL)
def test_redemption_goes_where_the_rule_says_and_nowhere_a_link_says(target: str) -> None:
    session, token = redeem_link()
    for extra in (f"redirect={quote(target)}", f"path={quote(target)}", f"next={quote(target)}"):
        reply, _ = APP.redeem(IsolateMemory(), f"t={quote(token)}&{extra}", session, NOW + 10, True)
        assert _location(reply) == "/collections/sneakers"
        assert APP.redeem(IsolateMemory(), f"t=bad&{extra}", session, NOW, True)[0].headers[0] == ("Location", "/")


@pytest.mark.parametrize("target", EVIL)
def test_rules_refuse_off_site_redirects_and_links(target: str) -> None:
    value = json.dumps(unquote(target))
    for extra in (f"url = {value}\n", f'[offer]\ncode = "X1"\npercent = 10\ncategory = "s"\nredirect = {value}\n'):
        if target.startswith("/%") or target == "//evil.example%2F..":
            continue  # stays on the shop once decoded as a path (checked below)
        with pytest.raises(RuleError, match="same-site"):
            load(extra)


def test_a_percent_encoded_path_is_a_path_on_the_shop() -> None:
    rule = load('url = "/%2F%2Fevil.example"\n').rules[0]
    assert rule.action.url == "/%2F%2Fevil.example" and lands_on_the_shop(rule.action.url)


def test_explain_only_explains_paths_on_this_site() -> None:
    app = Engine(APP.ruleset, SECRET, "", explain_token="qa")
    for target in EVIL:  # as written in the link: parse_qs decodes it once, as for any query
        reply = app.explain(IsolateMemory(), f"token=qa&path={target}", Session.fresh(NOW), None, NOW, "tracked",
                            RequestContext())
        assert reply.status == 400, target


# -- timing-safe comparison -------------------------------------------------------------------------


def test_signatures_are_compared_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    signer = Signer([b"new", b"old"], "session")
    token = Signer([b"old"], "session").sign(b"payload")
    assert signer.unsign(token) == b"payload"
    assert len(calls) == 2 and all(len(a) == len(b) == signing.MAC_BYTES for a, b in calls)  # newest key, then old
    with pytest.raises(BadData):
        signer.unsign(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert len(calls) == 4  # a wrong tag is checked against every key the same way


def test_no_tag_or_token_is_compared_with_equality() -> None:
    """Read the code paths: no `==`/`!=`/`in` on anything named like a MAC, tag, digest or token."""
    for function in (Signer.unsign, endpoint_replies.explain):
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                                                     for op in node.ops):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                assert not names & {"mac", "mac_text", "tag", "digest", "token", "expected"}, ast.unparse(node)


def test_the_explain_token_is_compared_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(endpoint_replies.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    app = Engine(APP.ruleset, SECRET, "", explain_token="right")
    for token, status in (("wrong", 403), ("right", 200)):
        reply = app.explain(IsolateMemory(), f"token={token}&path=/", Session.fresh(NOW), None, NOW, "tracked",
                            RequestContext())
        assert reply.status == status
    assert calls == [(b"wrong", b"right"), (b"right", b"right")]


# -- secrets: never logged, never defaulted -------------------------------------------------------------


def test_secrets_never_reach_the_log_or_stdout(caplog: pytest.LogCaptureFixture,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    secret, qa = "s3cret-core-0123456789", "qa-core-0123456789"
    app = Engine(load_ruleset(repo_rule_files()), parse_secrets(secret), "", explain_token=qa)
    caplog.set_level(logging.DEBUG)
    jar: dict[str, str] = {}
    for i, path in enumerate(["/", "/collections/sneakers", *PRODUCTS, "/checkout"]):
        plan = app.plan_page(IsolateMemory(), req(path, "utm_source=x"), app.load_session(jar, NOW + i), None, None,
                             NOW + i)
        jar.update(cookie_value(c) for c in plan.set_cookies)
        print(plan.log_line("tracked", app.rules_version, 0.1, 4, True))
    session = app.load_session(jar, NOW + 20)
    for body in (b'{"events": [{"type": "identify", "user": "c-1"}]}', b"{", b"[" * 3000):
        beacon = app.read_beacon("POST", body, "application/json")
        if not isinstance(beacon, Reply):
            app.apply_beacon(IsolateMemory(), beacon, session, NOW + 21, True)
    app.redeem(IsolateMemory(), "t=forged", session, NOW, True)
    app.explain(IsolateMemory(), f"token={qa}&path=/", session, None, NOW, "tracked", RequestContext())
    app.explain(IsolateMemory(), "token=nope&path=/", session, None, NOW, "tracked", RequestContext())
    out = capsys.readouterr()
    for text in (caplog.text, out.out, out.err, *jar.values()):
        assert secret not in text and qa not in text


@pytest.mark.parametrize("configured", [None, "", " ", " , ", "\t\n"])
def test_no_secret_means_no_signer_not_a_default_one(configured: str | None) -> None:
    assert parse_secrets(configured) == []
    with pytest.raises(ValueError, match="at least one secret"):
        Engine(APP.ruleset, parse_secrets(configured), "")


def test_the_example_secret_is_only_an_example() -> None:
    """`.dev.vars.example` feeds local development; nothing in the Worker's code knows it."""
    assert "change-me" in EXAMPLE_SECRET
    for source in Path(ROOT / "src" / "nudge").glob("*.py"):
        if source.name != "_bundle.py":
            assert EXAMPLE_SECRET not in source.read_text(), source
