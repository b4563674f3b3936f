"""QA tools in plain Python: the explain view (why each rule fired or not) and preview links."""

from __future__ import annotations

import json

import pytest

from nudge.engine import Engine, PageRequest
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.rules.load import load_ruleset
from nudge.rules.preview import PREVIEW_COOKIE
from nudge.visitor.attributes import RequestContext
from nudge.visitor.pages import Page
from nudge.visitor.profile import Profile, RuleHistory
from nudge.visitor.session import Session
from nudge.visitor.tracking import record_page_view
from tests.core.factories import NOW, SECRET, repo_rule_files

TOKEN = "let-me-see"


def app(**kw: object) -> Engine:
    return Engine(load_ruleset(repo_rule_files()), SECRET, "/* c */", explain_token=TOKEN, **kw)  # type: ignore[arg-type]


def explain(a: Engine, path: str, s: Session | None = None, profile: Profile | None = None,
            token: str = TOKEN, memory: IsolateMemory | None = None) -> dict[str, object]:
    reply = a.explain(memory or IsolateMemory(), f"token={token}&path={path}&format=json",
                      s or Session.fresh(NOW, b"visitor1"), profile, NOW, "tracked", RequestContext())
    assert reply.status == 200, reply.body
    return dict(json.loads(reply.body))


def by_rule(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["rule"]: r for r in report["rules"]}  # type: ignore[attr-defined, index]


def test_explain_names_the_failing_condition_with_the_visitors_value() -> None:
    rules = by_rule(explain(app(), "/collections/sneakers"))
    story = rules["sneakers-exit-intent"]
    assert story["outcome"] == "not shown" and story["reason"] == "condition: false"
    assert 'category.sneakers.dwell_seconds: wants {"$gte": 300}, visitor has 0' in story["failing"]  # type: ignore[operator]
    assert rules["boots-fit-guide"]["failing"] == ['page.category: wants "boots", visitor has "sneakers"']
    assert rules["welcome-back-hero"]["reason"].startswith("page:")  # type: ignore[union-attr]


def test_explain_says_when_the_isolate_knows_an_offers_budget_is_spent() -> None:
    s = Session.fresh(NOW, b"visitor1")
    for p in ("a", "b", "c"):
        record_page_view(s, Page("product", "sneakers", p), NOW)
    s.categories["sneakers"].dwell = 400
    memory = IsolateMemory()
    story = by_rule(explain(app(), "/collections/sneakers", s, memory=memory))["sneakers-exit-intent"]
    assert story["outcome"] == "shown"
    memory.budgets.mark_spent("sneakers-exit-intent", NOW)
    story = by_rule(explain(app(), "/collections/sneakers", s, memory=memory))["sneakers-exit-intent"]
    assert story["outcome"] == "not shown" and "today's discount budget is spent" in story["reason"]  # type: ignore[operator]


def test_explain_reports_caps_holdout_and_the_governor() -> None:
    a = app()
    s = Session.fresh(NOW, b"visitor1")
    for p in ("a", "b", "c"):
        record_page_view(s, Page("product", "sneakers", p), NOW)
    s.categories["sneakers"].dwell = 400
    s.closed.append(key32("sneakers-exit-intent"))
    rules = by_rule(explain(a, "/collections/sneakers", s))
    assert rules["sneakers-exit-intent"]["reason"] == "cap: clicked or dismissed in this visit"
    profile = Profile(visits=2, nudges={key32("sneakers-exit-intent"): RuleHistory(total=1, stopped=True)})
    s.closed.clear()
    rules = by_rule(explain(a, "/collections/sneakers", s, profile))
    assert rules["sneakers-exit-intent"]["reason"] == "cap: stopped for good after a click"
    rules = by_rule(explain(a, "/collections/sneakers", s))
    assert rules["sneakers-exit-intent"]["outcome"] in ("shown", "held out")
    assert s.pages == 3  # explain worked on a copy: the real session did not count a page


def test_explain_reads_a_path_with_a_query_as_the_page_would() -> None:
    # A URL pasted with its query: the query was classified as part of the path (category
    # "boots?sort=price", a search page seen as "other") and the search terms were not read.
    report = explain(app(), "/collections/boots%3Fsort%3Dprice")
    assert report["attributes"]["page"] == {"type": "category", "path": "/collections/boots",  # type: ignore[index]
                                            "category": "boots", "product": None}
    assert by_rule(report)["boots-fit-guide"]["outcome"] == "shown"
    assert report["path"] == "/collections/boots?sort=price"
    search = explain(app(), "/search%3Fq%3DTrail%2BShoes")["attributes"]
    assert search["page"]["type"] == "search" and search["session"]["searches"] == ["trail shoes"]  # type: ignore[index]


@pytest.mark.parametrize(("token", "status"), [("", 403), ("wrong", 403), (TOKEN, 200)])
def test_explain_needs_the_configured_token(token: str, status: int) -> None:
    reply = app().explain(IsolateMemory(), f"token={token}", Session.fresh(NOW), None, NOW, "tracked", RequestContext())
    assert reply.status == status and reply.headers[0] == ("Cache-Control", "no-store")


def test_explain_is_off_without_a_token_and_escapes_its_page() -> None:
    off = Engine(load_ruleset(repo_rule_files()), SECRET, "/* c */")
    off_reply = off.explain(IsolateMemory(), "token=", Session.fresh(NOW), None, NOW, "tracked", RequestContext())
    assert off_reply.status == 404
    html = app().explain(IsolateMemory(), f"token={TOKEN}&path=/search%3Fq%3D%3Cscript%3E", Session.fresh(NOW), None,
                         NOW, "tracked", RequestContext()).body
    assert "<script>" not in html and "&lt;script&gt;" in html and "sneakers-exit-intent" in html


def test_a_preview_shows_the_rule_at_once_and_stores_nothing() -> None:
    a = app()
    token = a.previews.mint("sneakers-exit-intent", 0, NOW, hours=1)
    start = a.start_preview(f"t={token}&path=/collections/boots", NOW, secure=True)
    assert start.status == 303 and ("Location", "/collections/boots") in start.headers
    cookie = dict(start.headers)["Set-Cookie"]
    assert cookie.startswith(f"{PREVIEW_COOKIE}=") and "Max-Age=3600" in cookie
    preview = a.preview_of({PREVIEW_COOKIE: token}, NOW)
    assert preview is not None
    plan = a.plan_page(IsolateMemory(), PageRequest(RequestContext(path="/")), Session.fresh(NOW), None, None, NOW,
                       cookies={"nudge": "real-session", PREVIEW_COOKIE: token}, preview=preview)
    assert 'data-nudge-rule="sneakers-exit-intent"' in plan.body_end  # no condition, any page
    assert '"trigger":"page_load"' in plan.body_end and "Preview of sneakers-exit-intent" in plan.body_start
    assert plan.set_cookies == [] and plan.events == [] and plan.profile_write is None  # nothing stored


def test_a_previewed_offer_button_goes_to_the_offers_page_without_redeeming() -> None:
    # A redeem link would be bound to the preview's throwaway visitor: the redeem endpoint refused it
    # and the marketer saw "that offer link has expired" instead of the page the offer leads to.
    a = app()
    preview = a.preview_of({PREVIEW_COOKIE: a.previews.mint("sneakers-exit-intent", 0, NOW)}, NOW)
    assert preview is not None
    plan = a.plan_page(IsolateMemory(), PageRequest(RequestContext(path="/")), Session.fresh(NOW), None, None, NOW,
                       preview=preview)
    assert 'data-nudge-cta href="/collections/sneakers"' in plan.body_end
    assert "/_nudge/redeem" not in plan.body_end and "no offer applied" in plan.body_start


@pytest.mark.parametrize("query", ["t=forged", "t=", "path=/x"])
def test_bad_preview_links_are_refused(query: str) -> None:
    assert app().start_preview(query, NOW, True).status == 403


def test_preview_links_expire() -> None:
    a = app()
    token = a.previews.mint("sneakers-exit-intent", 0, NOW, hours=1)
    assert a.preview_of({PREVIEW_COOKIE: token}, NOW + 3599) is not None
    assert a.preview_of({PREVIEW_COOKIE: token}, NOW + 3601) is None
    assert a.start_preview(f"t={token}", NOW + 3601, True).status == 403
    with pytest.raises(ValueError):
        a.previews.mint("x", 0, NOW, hours=100)
