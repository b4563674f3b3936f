"""The page plan's steps one by one (classify -> decide -> render -> place -> cookies); the whole
flow through pages, beacons and redemption is in test_engine.py."""

from __future__ import annotations

import dataclasses

import pytest

from nudge.delivery.csp import NOTHING, UNRESTRICTED, Injection
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.offer_apply import offer_shown
from nudge.offers import Redeemed
from nudge.page_plan import (
    Placement,
    classify,
    client_config,
    client_nudge,
    count_served,
    notices,
    on_load,
    page_cookies,
    page_style,
    place,
    preview_nudges,
    product_to_learn,
)
from nudge.rules.decide import Nudge
from nudge.rules.preview import Preview
from nudge.visitor.learned_catalog import LearnedCatalog
from nudge.visitor.pages import Page
from nudge.visitor.product_facts import ProductFacts
from nudge.visitor.session import Session

from .factories import NOW, make_app, repo_rule_files, req, session

APP = make_app()
RULES = APP.ruleset
SNEAKERS = Page("category", "sneakers")


def nudge(rule_id: str, **fields: object) -> Nudge:
    rule = RULES.rule(rule_id)
    assert rule is not None, rule_id
    return dataclasses.replace(Nudge(rule, 0), **fields)


# -- classify -------------------------------------------------------------------------------------


def test_a_product_page_without_a_category_in_its_path_takes_the_one_its_markup_declared() -> None:
    declared = ProductFacts("unlisted", category="sneakers")
    assert classify(RULES, "/products/unlisted", declared) == Page("product", "sneakers", "unlisted")
    assert classify(RULES, "/products/unlisted", None) == Page("product", None, "unlisted")
    # the shop's feed (rules/catalog.toml) names a listed product's category, before its markup does
    assert classify(RULES, "/products/ridge-hiker", None) == Page("product", "boots", "ridge-hiker")
    assert classify(RULES, "/products/ridge-hiker", declared) == Page("product", "boots", "ridge-hiker")
    path_says = classify(RULES, "/collections/boots/products/aero-runner", declared)
    assert path_says == Page("product", "boots", "aero-runner")  # the path wins over the markup
    assert classify(RULES, "/collections/sneakers", declared) == SNEAKERS


def test_a_product_page_is_read_for_facts_only_when_nudge_knows_none() -> None:
    page = Page("product", "sneakers", "never-seen")
    learned = LearnedCatalog()
    assert product_to_learn(learned, page, None) == "never-seen"
    assert product_to_learn(learned, page, ProductFacts("never-seen")) is None  # the edge already has them
    assert product_to_learn(learned, SNEAKERS, None) is None
    learned.remember("never-seen", ProductFacts("never-seen", price=10.0))
    assert product_to_learn(learned, page, None) is None


# -- decide ---------------------------------------------------------------------------------------


def test_a_preview_shows_its_rule_at_once_in_a_variant_that_exists() -> None:
    [shown] = preview_nudges(RULES, Preview("sneakers-exit-intent", 0, NOW + 60))
    assert shown.rule.id == "sneakers-exit-intent" and shown.rule.trigger == "page_load" and shown.variant == 0
    assert not shown.min_dwell and not shown.hidden
    assert preview_nudges(RULES, Preview("no-such-rule", 0, NOW + 60)) == []
    [clamped] = preview_nudges(RULES, Preview("sneakers-exit-intent", 7, NOW + 60))
    assert clamped.variant == 0  # no such variant: the rule's first


def test_only_inline_content_and_untriggered_banners_count_as_shown_on_load() -> None:
    assert on_load(nudge("top-buyer-badge")) and on_load(nudge("welcome-back-hero"))
    banner = nudge("boots-fit-guide")  # time_on_page
    assert not on_load(banner)
    untriggered = dataclasses.replace(banner, rule=dataclasses.replace(banner.rule, trigger="page_load"))
    assert on_load(untriggered)
    assert not on_load(dataclasses.replace(untriggered, min_dwell=30))  # waits for dwell on this page
    assert not on_load(nudge("sneakers-exit-intent"))  # a modal waits for its trigger


# -- render ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("injection", "expected"), [
    (UNRESTRICTED, '<style id="nudge-style">'),
    (Injection(True, "n1", True, "s1", False, False), '<style id="nudge-style" nonce="s1">'),
    (Injection(True, None, False, None, True, False), '<link rel="stylesheet" id="nudge-style" href="/_nudge/'),
    (Injection(False, None, True, None, True, True), ""),  # our script is blocked: nothing of ours can work
    (Injection(True, None, False, None, False, True), ""),  # no way to style: nothing either
    (NOTHING, ""),
])
def test_our_styles_go_in_as_the_pages_csp_allows(injection: Injection, expected: str) -> None:
    style = page_style(APP, injection)
    assert style.startswith(expected) if expected else style == ""
    if "<link" in expected:
        assert f'href="{APP.style_href}"' in style  # versioned: cached for good, replaced on change


def test_time_triggers_reach_the_client_as_seconds_on_the_page() -> None:
    assert client_nudge(nudge("boots-fit-guide", wait=20, min_dwell=5)) == {
        "rule": "boots-fit-guide", "kind": "banner", "trigger": "time", "value": 20, "minDwell": 5,
        "variant": 0, "counted": False}
    assert client_nudge(nudge("cart-reminder", wait=300))["value"] == 300  # the cart's remaining idle time
    exit_intent = client_nudge(nudge("sneakers-exit-intent"))
    assert (exit_intent["trigger"], exit_intent["value"]) == ("exit_intent", 0)


def test_serving_counts_exposures_for_all_decided_and_impressions_for_what_showed_on_load() -> None:
    s = session()
    held_out = nudge("sneakers-exit-intent", held_out=True)
    badge, banner = nudge("top-buyer-badge"), nudge("boots-fit-guide")
    events = count_served(s, SNEAKERS, [held_out, badge, banner], [(badge, "<b>"), (banner, "<div>")], tracked=True)
    assert [(e.kind, e.rule, e.group) for e in events] == [
        ("exposure", "sneakers-exit-intent", "holdout"), ("exposure", "top-buyer-badge", "treatment"),
        ("exposure", "boots-fit-guide", "treatment"), ("impression", "top-buyer-badge", "treatment")]
    assert all(e.page_type == "category" and e.visitor == s.visitor_id for e in events)
    assert set(s.served) == {key32("top-buyer-badge"), key32("boots-fit-guide")}  # beacons may report on these
    assert s.served[key32("top-buyer-badge")].revealed and s.served[key32("boots-fit-guide")].owed == 1
    assert key32("sneakers-exit-intent") not in s.served


def test_an_untracked_visitor_is_served_without_a_trace() -> None:
    s = session()
    badge = nudge("top-buyer-badge")
    assert count_served(s, SNEAKERS, [badge], [(badge, "<b>")], tracked=False) == []
    assert s.served == {} and s.shown == {}


# -- place ----------------------------------------------------------------------------------------


def test_each_kind_goes_to_its_place_after_the_notices() -> None:
    modal, banner = nudge("sneakers-exit-intent"), nudge("boots-fit-guide")
    hero, badge, recs = nudge("welcome-back-hero"), nudge("top-buyer-badge"), nudge("recommendations")
    placed = place([(modal, "M"), (banner, "B"), (hero, "H"), (badge, "G"), (recs, "R")], ["notice"])
    assert placed == Placement(body_start=["notice", "B"], body_end=["M"], slots={
        "hero": ("replace", "H"), "product-badges": ("append", "G"), "recommendations": ("replace", "R")})


def test_notices_come_in_order_and_the_offer_banner_only_on_its_category() -> None:
    offer = Redeemed("sneakers-exit-intent", "SNEAKERS10", 10, "sneakers", NOW + 3600)
    preview = Preview("boots-fit-guide", 0, NOW + 60)
    shown = offer_shown("header", True, False)
    opening = notices({"nudge_msg": "offer-used"}, offer, shown, SNEAKERS, preview)
    assert len(opening) == 3
    assert "already used this offer" in opening[0] and "SNEAKERS10" in opening[1] and "Preview of" in opening[2]
    assert "applied" in opening[1]
    told = notices({}, offer, offer_shown("code", False, False), SNEAKERS, None)  # worded as its mode allows
    assert len(told) == 1 and "at checkout" in told[0] and "applied" not in told[0]
    assert notices({}, offer, shown, Page("category", "boots"), None) == []
    assert notices({"nudge_msg": "anything else"}, None, None, SNEAKERS, None) == []  # only known messages


# -- cookies --------------------------------------------------------------------------------------


def test_the_page_sets_the_session_erases_for_the_untracked_and_nothing_in_a_preview() -> None:
    s = session()
    sent = {"nudge": "old", "nudge_msg": "offer-used", "shop": "x"}
    tracked = page_cookies(APP, True, s, sent, tracked=True, preview=None)
    assert [c.split("=")[0] for c in tracked] == ["nudge", "nudge_msg"]
    assert "Max-Age=0" not in tracked[0] and "Max-Age=0" in tracked[1]  # the message was shown: cleared
    untracked = page_cookies(APP, True, s, sent, tracked=False, preview=None)
    assert [c.split("=")[0] for c in untracked] == ["nudge", "nudge_msg"] and all("Max-Age=0" in c for c in untracked)
    preview = Preview("boots-fit-guide", 0, NOW + 60)
    assert page_cookies(APP, True, s, sent, tracked=False, preview=preview) == []
    assert all("Secure" not in c for c in page_cookies(APP, False, s, sent, tracked=True, preview=None))


def test_a_product_viewed_before_its_category_was_learned_counts_on_the_next_page() -> None:
    app, memory = make_app(), IsolateMemory()
    s = Session.fresh(NOW, b"late")
    app.plan_page(memory, req("/products/unlisted-runner"), s, None, None, NOW)  # nothing knows its category yet
    assert not any(c.products for c in s.categories.values())
    memory.learned.remember("unlisted-runner", ProductFacts("unlisted-runner", category="sneakers"))  # as it streamed
    app.plan_page(memory, req("/"), s, None, None, NOW + 30)
    assert len(s.categories["sneakers"].products) == 1  # its first view counts for sneakers


def test_cart_events_are_relayed_until_the_edge_has_seen_the_cart() -> None:
    app = make_app()  # the repo's rules watch the demo's cart routes at the edge
    assert app.cart is not None
    assert client_config(app, SNEAKERS, 1, [], True)["cartEvents"] is True
    assert client_config(app, SNEAKERS, 2, [], True, edge_cart_seen=True)["cartEvents"] is False
    no_routes = make_app({k: v for k, v in repo_rule_files().items() if k != "site.toml"})
    assert client_config(no_routes, SNEAKERS, 2, [], True, edge_cart_seen=True)["cartEvents"] is True
