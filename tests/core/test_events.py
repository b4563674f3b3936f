"""Measurement events the app emits: exposures (holdout too), impressions, clicks, dismisses,
conversions, and their Analytics Engine layout (docs/events.md)."""

from __future__ import annotations

import json

from nudge.engine import Engine, PageRequest
from nudge.events import Event
from nudge.isolate_memory import IsolateMemory
from nudge.rules.load import load_ruleset
from nudge.visitor.attributes import RequestContext
from nudge.visitor.beacon import Beacon
from nudge.visitor.beacon import Event as BeaconEvent
from nudge.visitor.session import Session
from nudge.visitor.tracking import record_served

from .factories import NOW, SECRET, repo_rule_files

PAGES = repo_rule_files()["pages.toml"]
BANNER = 'id = "hello"\n{extra}\n[action]\nkind = "banner"\ntitle = "Hello"\nbutton = "Go"\nurl = "/x"\n'


def app(extra: str = "") -> Engine:
    files = {"pages.toml": PAGES, "hello.toml": BANNER.format(extra=extra)}
    return Engine(load_ruleset(files), SECRET, "/* client */")


def page(a: Engine, visitor: bytes, tracked: bool = True) -> tuple[list[Event], str]:
    plan = a.plan_page(IsolateMemory(), PageRequest(RequestContext(path="/")), Session.fresh(NOW, visitor), None, None,
                       NOW, tracked=tracked)
    return plan.events, plan.body_end


def test_a_banner_on_load_is_exposed_and_impressed_by_the_worker_not_the_client() -> None:
    events, body = page(app(), b"visitor1")
    visitor = b"visitor1".hex()
    assert events == [Event("exposure", visitor, "hello", 0, "treatment", "home"),
                      Event("impression", visitor, "hello", 0, "treatment", "home")]
    assert '"counted":true' in body  # so the client sends no nudge_shown for it


def test_holdout_visitors_are_exposed_but_never_impressed() -> None:
    a = app("holdout = 50")
    held = [v for v in (f"v{i:07d}".encode() for i in range(200)) if page(a, v)[0][0].group == "holdout"]
    assert 60 < len(held) < 140  # about half
    events, body = page(a, held[0])
    assert [e.kind for e in events] == ["exposure"] and 'data-nudge-rule="hello"' not in body


def test_untracked_visitors_leave_no_events() -> None:
    assert page(app(), b"visitor1", tracked=False)[0] == []


def test_beacons_report_reveals_clicks_dismisses_and_purchases() -> None:
    a = app()
    s = Session.fresh(NOW, b"visitor1")
    record_served(s, "hello", revealed=False)  # the edge rendered it; the client reports its reveal
    beacon = Beacon(None, None, (BeaconEvent("nudge_shown", rule="hello"), BeaconEvent("nudge_clicked", rule="hello"),
                                 BeaconEvent("nudge_dismissed", rule="hello"), BeaconEvent("purchase", value=59.5)))
    _, key = a.apply_beacon(IsolateMemory(), beacon, s, NOW, secure=True)
    v = s.visitor_id
    # issue 15: once clicked the nudge is closed, so the dismiss after it does not count; the
    # browser's purchase is an unverified conversion (orders come from the shop)
    assert key.events == [Event("impression", v, "hello", 0, "treatment"), Event("click", v, "hello", 0, "treatment"),
                          Event("conversion_unverified", v, revenue=59.5)]
    s2 = Session.fresh(NOW, b"visitor2")
    record_served(s2, "hello", revealed=True)
    dismissed = Beacon(None, None, (BeaconEvent("nudge_dismissed", rule="hello"),))
    _, key = a.apply_beacon(IsolateMemory(), dismissed, s2, NOW, secure=True)
    assert key.events == [Event("dismiss", s2.visitor_id, "hello", 0, "treatment")]


def test_redeeming_an_offer_is_a_click() -> None:
    files = repo_rule_files()
    a = Engine(load_ruleset(files), SECRET, "/* client */")
    rule = a.ruleset.rule("sneakers-exit-intent")
    assert rule is not None
    s = Session.fresh(NOW, b"visitor1")
    token = a.offers.mint(rule, s.visitor_id, NOW)
    _, key = a.redeem(IsolateMemory(), f"t={token}", s, NOW, secure=True)
    assert [(e.kind, e.rule) for e in key.events] == [("click", "sneakers-exit-intent")]


def test_data_point_layout() -> None:
    point = Event("conversion", "ab" * 8, revenue=12.345).data_point("bundled:abc", NOW)
    assert point == {"indexes": [""], "blobs": ["conversion", "", "", "", "ab" * 8, "", "bundled:abc"],
                     "doubles": [12.35, float(NOW)]}
    exposure = Event("exposure", "cd" * 8, "r", 1, "holdout", "product").data_point("v", NOW)
    assert exposure["indexes"] == ["r"] and exposure["blobs"][:4] == ["exposure", "r", "1", "holdout"]
    assert json.loads(json.dumps(exposure)) == exposure


def test_a_shadow_rule_is_measured_as_if_live_and_never_shown() -> None:
    events, body = page(app("shadow = true"), b"visitor1")
    assert [(e.kind, e.group) for e in events] == [("exposure", "shadow")]
    assert 'data-nudge-rule="hello"' not in body and '"nudges":[]' in body


def test_global_shadow_mode_shows_nothing_and_measures_everything() -> None:
    a = Engine(load_ruleset({"pages.toml": PAGES, "hello.toml": BANNER.format(extra="")}), SECRET, "/* c */",
                shadow=True)
    events, body = page(a, b"visitor1")
    assert [(e.kind, e.group) for e in events] == [("exposure", "shadow")] and "nudge-banner" not in body


def test_the_log_line_summarizes_the_decision_without_personal_data() -> None:
    a = app("holdout = 10")
    plan = a.plan_page(IsolateMemory(), PageRequest(RequestContext(path="/"), query="email=jane@example.com"),
                       Session.fresh(NOW, b"visitor1"), None, None, NOW)
    line = json.loads(plan.log_line("tracked", "bundled:x", 0.42, 3, True, "held"))
    assert line == {"nudge": "page", "page": "home", "visitor": "tracked", "rules": "bundled:x", "ms": 0.42,
                    "handlers": 3, "ended": True, "profile": "held",
                    "decided": [{"rule": "hello", "variant": 0, "group": "treatment"}], "slots": [], "prices": False}
    assert "jane" not in json.dumps(line) and b"visitor1".hex() not in json.dumps(line)
