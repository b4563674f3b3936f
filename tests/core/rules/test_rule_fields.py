"""Every rule field: how it is written, how it is refused, and what it does to decisions."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nudge.engine import Engine, PageRequest
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.rules.decide import Nudge, decide
from nudge.rules.load import RuleError, load_ruleset
from nudge.rules.model import Caps, RuleSet
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.pages import Page
from nudge.visitor.profile import Profile, RuleHistory
from nudge.visitor.session import Session
from nudge.visitor.tracking import record_page_view
from tests.core.factories import NOW, repo_rule_files

PAGES = repo_rule_files()["pages.toml"]
HOME = Page("home")
BASE = '''
id = "r"
{extra}
[action]
kind = "banner"
title = "Hello"
{tables}
'''


def rule_set(extra: str = "", tables: str = "", site: str | None = None) -> RuleSet:
    files = {"pages.toml": PAGES, "r.toml": BASE.format(extra=extra, tables=tables)}
    if site is not None:
        files["site.toml"] = site
    return load_ruleset(files)


def error(extra: str = "", tables: str = "", site: str | None = None) -> RuleError:
    with pytest.raises(RuleError) as err:
        rule_set(extra, tables, site)
    return err.value


def run(rs: RuleSet, page: Page = HOME, path: str = "/", visitor: bytes = b"visitor1",
        profile: Profile | None = None, now: int = NOW, session: Session | None = None) -> list[Nudge]:
    s = session or Session.fresh(now, visitor)
    return decide(rs, visitor_attributes(s, page, profile, now), page, s, now, profile, path)


# -- triggers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "trigger", "value"),
    [
        ('trigger = "page_load"', "page_load", 0),
        ('trigger = "exit_intent"', "exit_intent", 0),
        ("trigger = { time_on_page = 20 }", "time_on_page", 20),
        ("trigger = { inactivity = 30 }", "inactivity", 30),
        ("trigger = { scroll = 50 }", "scroll", 50),
        ("trigger = { cart_abandoned = 15 }", "cart_abandoned", 15),
    ],
)
def test_trigger_forms(text: str, trigger: str, value: int) -> None:
    rule = rule_set(text).rules[0]
    assert (rule.trigger, rule.trigger_value) == (trigger, value)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('trigger = "time_on_page"', "trigger", "write { time_on_page = N }"),
        ('trigger = "hover"', "trigger", "unknown trigger"),
        ("trigger = { scroll = 150 }", "trigger.scroll", "1..100"),
        ("trigger = { scroll = 5.5 }", "trigger.scroll", "whole number"),
        ("trigger = { dance = 1 }", "trigger.dance", "unknown trigger"),
        ("trigger = { scroll = 5, inactivity = 9 }", "trigger", "one trigger"),
    ],
)
def test_trigger_errors(text: str, field: str, message: str) -> None:
    err = error(text)
    assert (err.file, err.field) == ("r.toml", field) and message in err.message


def test_time_based_trigger_delays() -> None:
    assert run(rule_set("trigger = { time_on_page = 20 }"))[0].wait == 20
    rs = rule_set("trigger = { cart_abandoned = 15 }")
    assert run(rs) == []  # no cart: nothing to remind of
    s = Session.fresh(NOW, b"visitor1")
    s.cart, s.cart_changed = {"x": 1}, NOW - 10 * 60
    assert run(rs, session=s)[0].wait == 5 * 60  # the remaining 5 minutes on this page
    s.cart_changed = NOW - 20 * 60
    assert run(rs, session=s)[0].wait == 0
    s.checkout_started = True
    assert run(rs, session=s) == []


# -- pages ----------------------------------------------------------------------------------------

def test_pages_by_type_and_url_glob() -> None:
    rs = rule_set('pages = ["cart", "/sale/*"]')
    assert run(rs, Page("cart"), "/cart") and run(rs, Page("other"), "/sale/boots")
    assert not run(rs, Page("home"), "/") and not run(rs, Page("other"), "/salesman")
    assert "neither a page type" in error('pages = ["landing"]').message
    assert "same-site" in error('pages = ["//evil"]').message


# -- experiments: variants, holdout, rollout ------------------------------------------------------

VARIANTS = '''
[[variants]]
weight = 25
[[variants]]
weight = 75
title = "Hi there"
'''

VISITORS = [i.to_bytes(8, "big") for i in range(2000)]


def test_variants_split_by_weight_and_override_the_action() -> None:
    rs = rule_set(tables=VARIANTS)
    picks = Counter(run(rs, visitor=v)[0].variant for v in VISITORS)
    assert 0.2 < picks[0] / len(VISITORS) < 0.3
    by_variant = {n.variant: n.action.title for v in VISITORS[:50] for n in run(rs, visitor=v)}
    assert by_variant == {0: "Hello", 1: "Hi there"}
    assert run(rs, visitor=VISITORS[7])[0].variant == run(rs, visitor=VISITORS[7])[0].variant  # sticky


def test_variant_errors() -> None:
    assert "one variant" in error(tables="[[variants]]\nweight = 100\n").message
    assert error(tables="[[variants]]\nweight = 0\n[[variants]]\nweight = 100\n").field == "variants[0].weight"
    colored = error(tables="[[variants]]\nweight = 50\ncolor = 'red'\n[[variants]]\nweight = 50\n")
    assert colored.field == "variants[0].color"
    assert "sum to 100, not 90" in error(tables="[[variants]]\nweight = 40\n[[variants]]\nweight = 50\n").message


def test_holdout_and_rollout() -> None:
    held = [run(rule_set("holdout = 20"), visitor=v)[0].held_out for v in VISITORS]
    assert 0.16 < sum(held) / len(held) < 0.24
    reached = [bool(run(rule_set("rollout = 30"), visitor=v)) for v in VISITORS]
    assert 0.26 < sum(reached) / len(reached) < 0.34
    assert error("holdout = 60").field == "holdout" and error("rollout = -1").field == "rollout"


def test_held_out_visitors_are_decided_but_never_shown() -> None:
    rs = rule_set("holdout = 50")
    app = Engine(rs, [b"k"], "")
    held = next(v for v in VISITORS if run(rs, visitor=v)[0].held_out)
    plan = app.plan_page(IsolateMemory(), PageRequest(RequestContext("/")), Session.fresh(NOW, held), None, None, NOW)
    assert plan.nudges[0].held_out and 'data-nudge-rule="r"' not in plan.body_start + plan.body_end


# -- caps -----------------------------------------------------------------------------------------

def history(**kwargs: int | bool) -> Profile:
    return Profile(visits=3, nudges={key32("r"): RuleHistory(**kwargs)})  # type: ignore[arg-type]


def test_caps_parse() -> None:
    caps = "[caps]\nper_session = 2\nper_day = 3\nper_lifetime = 9\ncooldown_hours = 48\nstop_after = 'conversion'\n"
    rule = rule_set(tables=caps).rules[0]
    assert rule.caps == Caps(2, 3, 9, 48, "conversion")
    assert error(tables="[caps]\nstop_after = 'sale'\n").field == "caps.stop_after"
    assert error(tables="[caps]\nper_day = 0\n").field == "caps.per_day"


@pytest.mark.parametrize(
    ("caps", "profile", "shown"),
    [
        ("per_day = 2", history(day=NOW // 86400, day_count=2), False),
        ("per_day = 2", history(day=NOW // 86400 - 1, day_count=5), True),  # yesterday's count
        ("per_lifetime = 3", history(total=3), False),
        ("per_lifetime = 3", history(total=2), True),
        ("cooldown_hours = 24", history(last_closed=NOW - 3600), False),
        ("cooldown_hours = 24", history(last_closed=NOW - 25 * 3600), True),
        ("stop_after = 'click'", history(stopped=True), False),
        ("stop_after = 'never'", history(stopped=True), True),
    ],
)
def test_caps_across_visits(caps: str, profile: Profile, shown: bool) -> None:
    assert bool(run(rule_set(tables=f"[caps]\n{caps}\n"), profile=profile)) is shown


def test_global_limits() -> None:
    files = {"pages.toml": PAGES, "site.toml": "[nudges]\nmax_per_page = 1\nmax_per_session = 2\n"}
    for i in range(3):
        files[f"r{i}.toml"] = BASE.format(extra="", tables="").replace('id = "r"', f'id = "r{i}"')
    rs = load_ruleset(files)
    assert len(run(rs)) == 1
    s = Session.fresh(NOW, b"visitor1")
    s.shown = {key32("r0"): 1, key32("r1"): 1}
    assert run(rs, session=s) == []  # the visit has had its share
    assert error(site="[nudges]\nmax_per_page = 0\n").field == "nudges.max_per_page"


# -- schedule -------------------------------------------------------------------------------------

NY = ZoneInfo("America/New_York")


def test_schedule_field_and_decisions() -> None:
    rs = rule_set(tables='''[schedule]
start = 2026-11-27T00:00:00
end = 2026-11-30T23:59:59
timezone = "America/New_York"
weekdays = ["fri", "sat", "sun"]
hours = [8, 22]
''')
    sched = rs.rules[0].schedule
    assert sched.start == int(datetime(2026, 11, 27, tzinfo=NY).timestamp())
    assert run(rs, now=int(datetime(2026, 11, 28, 12, tzinfo=NY).timestamp()))  # Saturday noon
    assert not run(rs, now=int(datetime(2026, 11, 28, 23, tzinfo=NY).timestamp()))  # too late
    assert not run(rs, now=int(datetime(2026, 12, 5, 12, tzinfo=NY).timestamp()))  # after the end


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('timezone = "Mars/Olympus"', "schedule.timezone"),
        ('weekdays = ["someday"]', "schedule.weekdays"),
        ("hours = [9, 9]", "schedule.hours"),
        ("hours = [9, 25]", "schedule.hours"),
        ('start = "soon"', "schedule.start"),
        ("start = 2026-12-01T00:00:00\nend = 2026-11-01T00:00:00", "schedule.end"),
    ],
)
def test_schedule_errors(table: str, field: str) -> None:
    assert error(tables=f"[schedule]\n{table}\n").field == field


# -- offers ---------------------------------------------------------------------------------------

OFFER = '[offer]\ncode = "X5"\ncategory = "boots"\nredirect = "/collections/boots"\n'


def test_offer_percent_or_amount() -> None:
    assert rule_set(tables=OFFER + "percent = 15\n").rules[0].offer.percent == 15  # type: ignore[union-attr]
    assert rule_set(tables=OFFER + "amount = 5.5\n").rules[0].offer.amount == 5.5  # type: ignore[union-attr]
    assert "either" in error(tables=OFFER).message
    assert "either" in error(tables=OFFER + "percent = 10\namount = 5\n").message
    assert error(tables=OFFER + "amount = -1\n").field == "offer.amount"


def test_seed_examples_are_expressible() -> None:
    """The seeds' if/then examples, as conditions over documented attributes."""
    s = Session.fresh(NOW, b"visitor1")
    record_page_view(s, Page("product", "sneakers", "aero-runner"), NOW)
    a = visitor_attributes(s, Page("home"), Profile(visits=4, orders=2, last_seen=NOW - 40 * 86400), NOW)
    from nudge.rules.conditions import evaluate

    assert evaluate({"products.recent": {"$elemMatch": {"$eq": "aero-runner"}}}, a)  # viewed product A
    assert evaluate({"visitor.engagement": {"$lt": 30}}, a)  # re-engagement
    assert evaluate({"visitor.buyer": "repeat"}, a)  # loyalty
    assert evaluate({"visitor.recency": {"$in": ["dormant", "lapsed"]}}, a)  # welcome back
    assert not evaluate({"cart.items": {"$gte": 3}}, a)  # free-shipping nudge needs 3+ items
    assert not evaluate({"visitor.new": True}, a)  # onboarding is for new visitors


def test_disabled_rules_and_the_page_index() -> None:
    assert run(rule_set("enabled = false")) == []
    rs = rule_set('pages = ["cart"]')
    assert rs.candidates("cart") == rs.rules and rs.candidates("home") == ()
    assert rule_set('pages = ["/sale/*"]').candidates("home")  # globs are checked per request


def test_a_rule_that_raises_is_skipped_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    import dataclasses

    files = {"pages.toml": PAGES}
    for name in ("a", "b"):
        files[f"{name}.toml"] = BASE.format(extra="", tables="").replace('id = "r"', f'id = "{name}"')
    rs = load_ruleset(files)

    def explode(_attributes: object) -> bool:
        raise RuntimeError("boom")

    broken = RuleSet(rs.classifier, (dataclasses.replace(rs.rules[0], match=explode), rs.rules[1]),
                     rs.cart, rs.settings)
    assert [n.rule.id for n in run(broken)] == ["b"]
    assert "rule a failed" in caplog.text


@pytest.mark.parametrize(
    ("referrer", "modal"),
    [("google.com", False), ("google.co.uk", False), ("bing.com", False), ("duckduckgo.com", False),
     ("news.example", True), (None, True), ("notgoogle.example", True)],
)
def test_no_modal_on_the_landing_page_from_a_search_engine(referrer: str | None, modal: bool) -> None:
    modal_rule = BASE.format(extra="", tables="").replace('kind = "banner"', 'kind = "modal"')
    rs = load_ruleset({"pages.toml": PAGES, "m.toml": modal_rule,
                       "b.toml": BASE.format(extra="", tables="").replace('id = "r"', 'id = "b"')})
    s = Session.fresh(NOW, b"visitor1")
    record_page_view(s, Page("home"), NOW, "", f"https://{referrer}/search" if referrer else None, "shop.example")
    decided = {n.rule.id for n in run(rs, session=s)}
    assert ("r" in decided) is modal and "b" in decided  # banners are fine
    record_page_view(s, Page("home"), NOW + 10)
    assert "r" in {n.rule.id for n in run(rs, session=s)}  # the second page may have it
