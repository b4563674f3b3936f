"""The page flow through the engine, in plain Python: what pages show and set across a visit, for
tracked and untracked visitors (beacons: test_visit_reports.py; redemption: test_redemption.py)."""

from __future__ import annotations

import json
import re

from nudge.engine import Engine
from nudge.visitor.cookies import parse_cookies
from nudge.visitor.session import Session

from .factories import NOW, PRODUCTS, RULE, make_app, req, visit

APP = make_app()


def test_story_page_gets_the_hidden_modal_with_a_redeem_link() -> None:
    _, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=300)
    assert f'data-nudge-rule="{RULE}"' in body and " hidden>" in body
    assert "/_nudge/redeem?t=" in body
    config = json.loads(re.search(r'id="nudge-config">(.*?)</script>', body).group(1))  # type: ignore[union-attr]
    assert config["nudges"] == [{"rule": RULE, "kind": "modal", "trigger": "exit_intent", "value": 0,
                                 "minDwell": 0, "variant": 0, "counted": False}]


def test_before_thresholds_nothing_or_a_timed_modal() -> None:
    _, body = visit(APP, ["/collections/sneakers", *PRODUCTS[:2]], dwell=300)
    assert "nudge-modal" not in body
    _, body = visit(APP, ["/collections/sneakers", *PRODUCTS], dwell=60)
    assert '"minDwell":240' in body


def test_set_cookie_attributes() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(req("/"), s, None, None, NOW)
    assert plan.set_cookies[0].endswith("Path=/; Max-Age=34560000; SameSite=Lax; HttpOnly; Secure")
    plan = APP.plan_page(req("/", secure=False), s, None, None, NOW)
    assert "Secure" not in plan.set_cookies[0] and "HttpOnly" in plan.set_cookies[0]


def test_first_page_of_a_visit_writes_the_profile_once() -> None:
    s = Session.fresh(NOW, b"visitor1")
    written = APP.plan_page(req("/"), s, None, None, NOW).profile_write
    assert written is not None and written.visits == 1
    back = APP.load_session({"nudge": APP.codec.encode(s)}, NOW)
    assert APP.plan_page(req("/"), back, None, None, NOW).profile_write is None


def test_our_cookies_are_parsed_leniently() -> None:
    assert parse_cookies('a=1; nudge="x.y"; bad; =v; a=2') == {"a": "1", "nudge": "x.y"}


def test_untracked_visitors_get_nudges_but_nothing_is_stored() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(req("/"), s, None, None, NOW, tracked=False, cookies={})
    assert plan.set_cookies == [] and plan.profile_write is None and '"track":false' in plan.body_end
    erase = APP.plan_page(req("/"), s, None, None, NOW, tracked=False, cookies={"nudge": "x", "nudge_dw": "1.2"})
    assert [c.split("=")[0] for c in erase.set_cookies] == ["nudge", "nudge_dw"]
    assert all("Max-Age=0" in c for c in erase.set_cookies)


def test_visitor_status_and_forget() -> None:
    from nudge.visitor.privacy import ConsentPolicy

    app = Engine(APP.ruleset, [b"k"], "", ConsentPolicy.from_config("opt-in", "consent"))
    assert app.visitor_status({"user-agent": "Googlebot/2.1"}, {}) == "automated"
    assert app.visitor_status({}, {}) == "untracked"
    assert app.visitor_status({}, {"consent": "granted"}) == "tracked"
    reply = app.forget("POST", {"nudge": "v", "other": "x"}, "abcd", True, secure=True)
    assert json.loads(reply.body) == {"erased": {"cookies": ["nudge"], "visitor": "abcd", "profile": True,
                                                 "identity_link": False}}
    assert app.forget("GET", {}, None, False, secure=True).status == 405


def test_the_polite_message_shows_once_on_the_next_page() -> None:
    s = Session.fresh(NOW, b"visitor1")
    plan = APP.plan_page(req("/"), s, None, None, NOW, cookies={"nudge_msg": "offer-expired"})
    assert "that offer link has expired" in plan.body_start
    assert any(c.startswith("nudge_msg=;") and "Max-Age=0" in c for c in plan.set_cookies)
    quiet = APP.plan_page(req("/"), s, None, None, NOW, cookies={"nudge_msg": "<script>"})
    assert "nudge-notice" not in quiet.body_start  # only known messages, never cookie text
