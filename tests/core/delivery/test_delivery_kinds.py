"""Slots, badges, recommendations, templates, price rewriting and discount guardrails (core)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.delivery import render
from nudge.delivery.csp import Injection, plan_injection
from nudge.engine import Engine, PagePlan, PageRequest
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.offers import Redeemed
from nudge.rules.decide import Nudge, decide
from nudge.rules.load import RuleError, load_ruleset
from nudge.rules.model import RuleSet
from nudge.rules.product_feed import load_catalog
from nudge.rules.recommend import recommend
from nudge.rules.templates import MissingValue, TemplateError, compile_template
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.pages import Page
from nudge.visitor.profile import Profile, decode_profile, encode_profile
from nudge.visitor.session import Session
from nudge.visitor.tracking import record_page_view
from tests.core.factories import NOW, SECRET, repo_rule_files

PAGES = repo_rule_files()["pages.toml"]
CATALOG = '''
[[product]]
id = "runner"
sku = "SNK-1"
name = "Runner <b>"
url = "/collections/sneakers/products/runner"
category = "sneakers"
price = 129.0
image = "/img/runner.png"
accessories = ["socks", "laces"]

[[product]]
id = "court"
name = "Court"
url = "/collections/sneakers/products/court"
category = "sneakers"
price = 89

[[product]]
id = "socks"
sku = "ACC-1"
name = "Socks"
url = "/collections/accessories/products/socks"
category = "accessories"
price = 12.5

[[product]]
id = "laces"
name = "Laces"
url = "/collections/accessories/products/laces"
category = "accessories"
'''


def rules(*bodies: str, site: str = "", catalog: str = CATALOG) -> RuleSet:
    files = {"pages.toml": PAGES, "catalog.toml": catalog, "site.toml": site}
    files.update({f"r{i}.toml": body for i, body in enumerate(bodies)})
    return load_ruleset(files)


def rule_text(rule_id: str, kind: str, extra: str = "", action: str = "", priority: int = 0) -> str:
    return (f'id = "{rule_id}"\npriority = {priority}\n{extra}\n[action]\nkind = "{kind}"\n'
            f'{action or "title = " + repr(rule_id)}\n')


def error(*bodies: str, **kw: str) -> str:
    with pytest.raises(RuleError) as err:
        rules(*bodies, **kw)
    return str(err.value)


def run(rs: RuleSet, page: Page, s: Session | None = None, profile: Profile | None = None,
        spent: frozenset[str] = frozenset()) -> list[Nudge]:
    s = s or Session.fresh(NOW, b"visitor1")
    attributes = visitor_attributes(s, page, profile, NOW, free_shipping_over=rs.settings.free_shipping_over)
    return decide(rs, attributes, page, s, NOW, profile, "/", spent)


# -- templates ------------------------------------------------------------------------------------

def test_templates_fill_escape_and_format() -> None:
    t = compile_template("You're {{ cart.free_shipping_left | money }} away, {{ page.category | upper }} <3")
    html = t.render({"cart": {"free_shipping_left": 12.5}, "page": {"category": "<sneakers>"}}, "EUR")
    assert html == "You&#x27;re €12.50 away, &lt;SNEAKERS&gt; &lt;3"


@pytest.mark.parametrize("attrs", [{}, {"cart": {}}, {"cart": {"free_shipping_left": None}},
                                   {"cart": {"free_shipping_left": "lots"}}])
def test_a_missing_value_means_no_message(attrs: dict[str, object]) -> None:
    with pytest.raises(MissingValue):
        compile_template("{{ cart.free_shipping_left | money }} to go").render(attrs)


@pytest.mark.parametrize(("text", "message"), [
    ("{{ cart.valu }}", "did you mean `cart.value`"),
    ("{{ cart }}", "unknown attribute `cart`"),
    ("{{ cart.value | shout }}", "unknown filter `shout`"),
    ("{{ cart.value", "unbalanced"),
    ("{{ __import__('os') }}", "expected an attribute path"),
])
def test_bad_placeholders_are_refused_at_load(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_template(text)
    assert message in error(rule_text("r", "banner", action=f"body = {text!r}"))


@given(st.text(max_size=60), st.text(max_size=60))
def test_template_output_never_carries_markup_from_values(literal: str, value: str) -> None:
    try:
        t = compile_template(literal.replace("{", "").replace("}", "") + "{{ page.category }}")
    except TemplateError:
        return
    html = t.render({"page": {"category": value}})
    assert "<" not in html and ">" not in html and '"' not in html


# -- rule fields for the inline kinds ----------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    (rule_text("r", "slot"), "action.slot: required"),
    (rule_text("r", "slot", action='slot = "Hero Banner"\ntitle = "x"'), "action.slot: the data-nudge-slot name"),
    (rule_text("r", "banner", action='slot = "hero"\ntitle = "x"'), "only slot, badge, recommendations fill a slot"),
    (rule_text("r", "badge", 'trigger = "exit_intent"', 'slot = "b"\nbody = "x"'),
     "trigger: a badge is part of the page"),
    (rule_text("r", "recommendations", action='slot = "recs"\nsources = ["bestsellers"]'),
     "action.sources: expected some of"),
    (rule_text("r", "recommendations", action='slot = "recs"\nlimit = 50'), "action.limit: expected 1..12"),
])
def test_inline_kinds_are_validated(body: str, message: str) -> None:
    assert message in error(body)


def test_recommendations_need_a_catalog() -> None:
    assert "add rules/catalog.toml" in error(rule_text("r", "recommendations", action='slot = "recs"'), catalog="")


@pytest.mark.parametrize(("catalog", "message"), [
    ('[[product]]\nid = "a"\nname = "A"\nurl = "https://evil.example/a"\ncategory = "c"',
     "product[0].url: must be a same-site path"),
    ('[[product]]\nid = "a"\nname = "A"\nurl = "/a"\ncategory = "c"\naccessories = ["zzz"]',
     "'zzz' is not a product id"),
    ('[[product]]\nid = "a"\nname = "A"\nurl = "/a"\ncategory = "c"\nimage = "javascript:x"',
     "image: must be a same-site path or an https"),
    ('[[product]]\nid = "a"\nname = "A"\nurl = "/a"\ncategory = "c"\ncolour = "red"',
     "product[0].colour: unknown field"),
    ('[[product]]\nid = "a"\nname = "A"\nurl = "/a"\ncategory = "c"\n'
     '[[product]]\nid = "a"\nname = "B"\nurl = "/b"\ncategory = "c"',
     "duplicate id 'a'"),
])
def test_the_catalog_file_is_validated_with_its_line(catalog: str, message: str) -> None:
    text = error(catalog=catalog)
    assert text.startswith("catalog.toml:") and message in text


def test_inline_rules_default_to_no_caps_and_are_not_messages() -> None:
    rs = rules(rule_text("s", "slot", action='slot = "hero"\ntitle = "x"'),
               rule_text("c", "slot", action='slot = "side"\ntitle = "x"', extra="[caps]\nper_session = 2"))
    s, c = rs.rule("s"), rs.rule("c")
    assert s and c and s.caps.per_session >= 1000 and s.caps.stop_after == "never" and not s.counted
    assert c.caps.per_session == 2 and c.counted and rs.message_keys == set()


# -- decisions --------------------------------------------------------------------------------------

def test_one_rule_per_slot_and_inline_content_does_not_use_the_pages_message_limit() -> None:
    rs = rules(
        rule_text("hero-a", "slot", action='slot = "hero"\ntitle = "A"', priority=5),
        rule_text("hero-b", "slot", action='slot = "hero"\ntitle = "B"', priority=1),
        rule_text("badge", "badge", action='slot = "badges"\nbody = "hi"'),
        rule_text("m1", "banner"), rule_text("m2", "banner"), rule_text("m3", "banner"),
    )
    ids = [n.rule.id for n in run(rs, Page("home"))]
    assert "hero-a" in ids and "hero-b" not in ids and "badge" in ids
    assert len([i for i in ids if i.startswith("m")]) == 2  # max_per_page: messages only


def test_a_visit_that_has_seen_enough_messages_still_gets_inline_content() -> None:
    rs = rules(rule_text("slot", "slot", action='slot = "hero"\ntitle = "x"', extra="[caps]\nper_session = 99"),
               rule_text("msg", "banner", extra="[caps]\nper_session = 5"), site="[nudges]\nmax_per_session = 2")
    s = Session.fresh(NOW, b"visitor1")
    s.shown = {key32("slot"): 50}  # slot renders are not messages
    assert [n.rule.id for n in run(rs, Page("home"), s)] == ["slot", "msg"]
    s.shown[key32("msg")] = 2
    assert [n.rule.id for n in run(rs, Page("home"), s)] == ["slot"]


OFFER_RULE = rule_text("deal", "banner", action='title = "10% off"\nbutton = "Get it"',
                       extra='[offer]\ncode = "DEAL10"\npercent = 10\ncategory = "sneakers"\n'
                             'redirect = "/collections/sneakers"')


def test_no_discount_in_checkout_or_for_recent_buyers_or_past_the_budget() -> None:
    rs = rules(OFFER_RULE)
    assert [n.rule.id for n in run(rs, Page("home"))] == ["deal"]
    assert run(rs, Page("checkout")) == []
    in_checkout = Session.fresh(NOW, b"visitor1")
    in_checkout.checkout_started = True
    assert run(rs, Page("home"), in_checkout) == []
    assert run(rs, Page("home"), profile=Profile(visits=3, orders=1, last_order=NOW - 5 * 86_400)) == []
    assert run(rs, Page("home"), profile=Profile(visits=3, orders=1, last_order=NOW - 40 * 86_400)) != []
    bought_now = Session.fresh(NOW, b"visitor1")
    bought_now.orders = 1
    assert run(rs, Page("home"), bought_now) == []
    assert run(rs, Page("home"), spent=frozenset({"deal"})) == []


def test_recent_buyer_guardrail_can_be_switched_off() -> None:
    rs = rules(OFFER_RULE.replace('percent = 10', 'percent = 10\nnot_after_purchase_days = 0'))
    assert run(rs, Page("home"), profile=Profile(visits=3, orders=1, last_order=NOW - 86_400)) != []


def test_profiles_remember_the_last_order_and_still_read_version_4() -> None:
    import msgpack

    old = msgpack.packb([4, 2, 1, 1000, 0, NOW - 99, NOW - 9, [], None, []])
    assert decode_profile(old) == Profile(visits=2, orders=1, revenue=1000, first_seen=NOW - 99, last_seen=NOW - 9)
    p = Profile(visits=1, orders=1, last_order=NOW)
    assert decode_profile(encode_profile(p)) == p


# -- recommendations --------------------------------------------------------------------------------

def test_recommendations_follow_the_sources_and_skip_the_cart_and_the_product_on_screen() -> None:
    catalog = load_catalog(__import__("tomllib").loads(CATALOG))
    s = Session.fresh(NOW, b"v")
    for slug in ("court", "runner"):
        record_page_view(s, Page("product", "sneakers", slug), NOW)
    page = Page("product", "sneakers", "runner")
    got = [p.id for p in recommend(catalog, s, page, ("accessories", "recently_viewed", "category"), 4)]
    assert got == ["socks", "laces", "court"]
    s.cart = {"ACC-1": 1}  # the socks, by sku
    assert [p.id for p in recommend(catalog, s, page, ("accessories", "recently_viewed"), 4)] == ["laces", "court"]
    assert [p.id for p in recommend(catalog, s, Page("cart"), ("accessories",), 1)] == ["laces"]  # of the last product
    assert [p.id for p in recommend(catalog, s, Page("home"), ("category",), 4)] == ["runner", "court"]  # catalog order


# -- rendering ------------------------------------------------------------------------------------------

def app(*bodies: str, site: str = "[shop]\ncurrency = \"EUR\"\nfree_shipping_over = 50") -> Engine:
    files = {"pages.toml": PAGES, "catalog.toml": CATALOG, "site.toml": site}
    files.update({f"r{i}.toml": body for i, body in enumerate(bodies)})
    return Engine(load_ruleset(files), SECRET, "/* client */")


def plan(a: Engine, path: str, s: Session | None = None, injection: Injection | None = None,
         offer: Redeemed | None = None) -> PagePlan:
    kw = {"injection": injection} if injection is not None else {}
    session = s or Session.fresh(NOW, b"visitor1")
    return a.plan_page(IsolateMemory(), PageRequest(RequestContext(path=path)), session, offer, None, NOW, **kw)


def test_plan_fills_slots_counts_capped_inline_reveals_and_keeps_them_out_of_the_client() -> None:
    a = app(rule_text("hero", "slot", action='slot = "hero"\ntitle = "Hi <you>"\nbutton = "Go"\nurl = "/x"',
                      extra="[caps]\nper_session = 3"),
            rule_text("ship", "badge",
                      action='slot = "cart-badges"\nbody = "{{ cart.free_shipping_left | money }} to free shipping"'),
            rule_text("recs", "recommendations", action='slot = "recs"\ntitle = "For you"'))
    s = Session.fresh(NOW, b"visitor1")
    p = plan(a, "/", s)
    assert p.slots["hero"][0] == "replace" and "Hi &lt;you&gt;" in p.slots["hero"][1]
    mode, badge = p.slots["cart-badges"]
    assert mode == "append" and ">€50.00 to free shipping</span>" in badge
    assert "recs" not in p.slots  # nothing viewed yet, no category: nothing to recommend, slot left alone
    assert s.shown == {key32("hero"): 1}  # capped inline rules are counted when rendered
    assert '"nudges":[]' in p.body_end


def test_a_csp_that_blocks_our_script_leaves_the_page_alone() -> None:
    a = app(rule_text("hero", "slot", action='slot = "hero"\ntitle = "x"'), rule_text("b", "banner"))
    p = plan(a, "/", injection=plan_injection("script-src 'none'"))
    assert (p.head, p.body_start, p.body_end, p.slots) == ("", "", "", {})
    nonce = plan(a, "/", injection=plan_injection("script-src 'nonce-n1'; style-src 'nonce-n1'"))
    assert 'nonce="n1"' in nonce.head and 'defer nonce="n1"' in nonce.body_end
    link = plan(a, "/", injection=plan_injection("default-src 'self'"))
    assert link.head.startswith('<link rel="stylesheet" id="nudge-style" href="/_nudge/nudge.css?v=')


@pytest.mark.parametrize(("marked", "offer", "expected"), [
    ("129.00", Redeemed("r", "C", 10, "x", NOW), (129.0, 116.1)),
    (" 1,299.00 ", Redeemed("r", "C", 20, "x", NOW), (1299.0, 1039.2)),
    ("20", Redeemed("r", "C", 0, "x", NOW, amount=25.0), (20.0, 0.0)),  # never below zero
    ("call us", Redeemed("r", "C", 10, "x", NOW), None),
    ("-5", Redeemed("r", "C", 10, "x", NOW), None),
    ("1e9", Redeemed("r", "C", 10, "x", NOW), None),
    ("", Redeemed("r", "C", 10, "x", NOW), None),
    ("12,99", Redeemed("r", "C", 10, "x", NOW), None),  # a European decimal comma: not read as 1299
    ("1,29,900", Redeemed("r", "C", 10, "x", NOW), None),  # not thousands groups
])
def test_marked_prices_after_the_offer(marked: str, offer: Redeemed, expected: tuple[float, float] | None) -> None:
    assert offer.price_after(marked) == expected


def test_rendered_recommendations_escape_and_size_their_images() -> None:
    a = app(rule_text("recs", "recommendations", action='slot = "recs"\ntitle = "For <you>"'))
    catalog = a.ruleset.catalog
    html = render.recommendations(Nudge(a.ruleset.rule("recs"), 0), list(catalog.products[:2]), "EUR")  # type: ignore[arg-type]
    assert "Runner &lt;b&gt;" in html and "€129.00" in html and 'width="300" height="300"' in html
    assert "For &lt;you&gt;" in html and 'aria-labelledby="nudge-t-recs"' in html
