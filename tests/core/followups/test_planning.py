"""Follow-ups beyond the visit: rule validation, scheduling and cancelling, the consumer's decision,
and the engine's follow-ups end to end (followups/planning.py; the webhook in test_webhook.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nudge.engine import Engine, PageRequest
from nudge.followups.messages import FollowUp, Pending, event_id
from nudge.followups.planning import Before, cancelled_by, followup_message, plan_followups, qualifies, skip_reason
from nudge.followups.webhook import issue_code
from nudge.isolate_memory import IsolateMemory
from nudge.rules.load import RuleError, load_ruleset
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.beacon import Beacon, Event, Item
from nudge.visitor.cookies import parse_cookies
from nudge.visitor.pages import Page
from nudge.visitor.session import Session
from nudge.visitor.tracking import apply_beacon, record_page_view
from tests.core.factories import NOW, make_app, post_beacon, repo_rule_files, repo_ruleset, session

RULES = repo_ruleset()
CART = RULES.followup("cart-abandoned-email")
BROWSE = RULES.followup("browse-abandoned-email")
SITE = "https://shop.example"


def rules_with(text: str) -> dict[str, str]:
    files = {k: v for k, v in repo_rule_files().items() if k in ("pages.toml", "site.toml", "catalog.toml")}
    return {**files, "f.toml": text}


WEBHOOK = 'id = "f"\ntrigger = { cart_abandoned = 15 }\n[action]\nkind = "webhook"\n'


def test_the_repo_follow_ups_load_apart_from_the_on_site_rules() -> None:
    assert CART is not None and BROWSE is not None
    assert CART.trigger == "cart_abandoned" and CART.trigger_value == 15 and CART.action.limit == 3
    assert RULES.rule("cart-abandoned-email") is None  # nothing on a page can name a follow-up
    assert all(not r.action.followup for r in RULES.rules)
    assert all("cart-abandoned-email" not in [c.id for c in RULES.candidates(t)] for t in ("home", "product", "cart"))
    assert CART.offer is not None and CART.offer.code == "CART" and not CART.offer.until_midnight


@pytest.mark.parametrize(("text", "message"), [
    ('id = "f"\ntrigger = "exit_intent"\n[action]\nkind = "webhook"\n', "a webhook follows up after the visit"),
    ('id = "f"\ntrigger = { cart_abandoned = 721 }\n[action]\nkind = "webhook"\n', "at most 720 minutes"),
    ('id = "f"\npages = ["cart"]\ntrigger = { cart_abandoned = 15 }\n[action]\nkind = "webhook"\n', "remove `pages`"),
    ('id = "f"\ntrigger = { browse_abandoned = 30 }\n[action]\nkind = "banner"\ntitle = "t"\n',
     'use it with [action] kind = "webhook"'),
    (WEBHOOK + "recommendations = 13\n", "expected 0..12"),
    (WEBHOOK + '[offer]\ncode = "MUCH-TOO-LONG-PREFIX"\npercent = 10\ncategory = "x"\nredirect = "/"\n', "at most 12"),
    (WEBHOOK + 'title = "a"\n[[variants]]\nweight = 50\n[[variants]]\nweight = 50\n', "a webhook has no variants"),
])
def test_follow_up_rules_with_a_mistake_are_refused_with_the_field(text: str, message: str) -> None:
    with pytest.raises(RuleError, match="f.toml") as err:
        load_ruleset(rules_with(text))
    assert message in str(err.value)


def attrs(s: Session) -> dict[str, object]:
    return visitor_attributes(s, Page("other"), None, s.last_seen)


def cart_session() -> tuple[Session, dict[str, object]]:
    s = session()
    record_page_view(s, Page("product", "sneakers", "aero-runner"), NOW)
    apply_beacon(s, Beacon(None, None, (Event("add_to_cart", (Item("SNK-001", 2),), 258.0),)), NOW + 5)
    return s, attrs(s)


def test_a_waiting_cart_schedules_the_cart_follow_up_due_after_its_window() -> None:
    assert CART is not None
    s, attributes = cart_session()
    assert qualifies(CART, s, attributes)
    m = followup_message(CART, s, NOW + 5, SITE)
    assert m.due == NOW + 5 + 15 * 60 and m.delay(NOW + 5) == 900 and m.action == "abandoned_cart"
    assert m.items == (("SNK-001", 2),) and m.event == event_id(CART.id, m.visitor, m.due)
    assert FollowUp.from_json(m.to_json()) == m
    later = followup_message(CART, s, NOW + 60, SITE)
    assert later.event != m.event  # each qualifying request supersedes the last


def test_no_cart_follow_up_for_an_empty_cart_a_started_checkout_or_a_failing_condition() -> None:
    assert CART is not None and BROWSE is not None
    empty = session()
    assert not qualifies(CART, empty, attrs(empty))
    s, attributes = cart_session()
    assert not qualifies(CART, s, {**attributes, "cart": {"value": 0}})
    s.checkout_started = True
    assert not qualifies(CART, s, attributes)
    carted, _ = cart_session()
    for i, slug in enumerate(("court-classic", "trail-sprint", "cloud-knit")):
        record_page_view(carted, Page("product", "sneakers", slug), NOW + 10 + i)
    assert not qualifies(BROWSE, carted, attrs(carted))


def test_browse_follow_up_carries_the_viewed_products_and_their_category() -> None:
    assert BROWSE is not None
    s = session()
    for i, slug in enumerate(("aero-runner", "court-classic")):
        record_page_view(s, Page("product", "sneakers", slug), NOW + i)
    assert not qualifies(BROWSE, s, attrs(s))  # two pairs: not yet
    record_page_view(s, Page("product", "sneakers", "trail-sprint"), NOW + 2)
    assert qualifies(BROWSE, s, attrs(s))
    m = followup_message(BROWSE, s, NOW + 3, SITE)
    assert m.action == "abandoned_browse" and m.category == "sneakers" and m.due == NOW + 3 + 30 * 60
    assert [sku for sku, _ in m.items] == ["trail-sprint", "court-classic", "aero-runner"]


def test_checkout_purchase_and_a_started_cart_cancel_follow_ups_once_on_the_change() -> None:
    assert CART is not None and BROWSE is not None
    before, _ = cart_session()
    after = dataclasses.replace(before, checkout_started=True)
    assert cancelled_by(CART, Before.of(before), after, purchased=False) == "checkout"
    assert cancelled_by(CART, Before.of(after), after, purchased=False) is None
    assert cancelled_by(CART, Before.of(before), before, purchased=True) == "purchase"
    browsing = session()
    assert cancelled_by(BROWSE, Before.of(browsing), before, purchased=False) == "cart"
    assert cancelled_by(BROWSE, Before.of(before), before, purchased=False) is None



def due_message() -> tuple[FollowUp, Pending]:
    assert CART is not None
    s, _ = cart_session()
    m = followup_message(CART, s, NOW, SITE)
    return m, Pending().scheduled(m)


def test_a_due_follow_up_is_sent_only_while_it_still_holds() -> None:
    m, pending = due_message()
    now = m.due
    assert skip_reason(m, CART, pending, 0, "cust-42", now) is None
    assert skip_reason(m, None, pending, 0, "cust-42", now) == "rule removed or disabled"
    assert skip_reason(m, CART, None, 0, "cust-42", now) == "nothing pending (forgotten, or never stored)"
    assert skip_reason(m, CART, pending.cancel("checkout"), 0, "cust-42", now) == "cancelled: checkout"
    assert skip_reason(m, CART, pending, m.queued + 60, "cust-42", now) == "cancelled: purchase"
    assert skip_reason(m, CART, pending, m.queued - 86_400, "cust-42", now) is None  # an older order
    assert skip_reason(m, CART, pending, 0, None, now) == "anonymous visitor (no logged-in customer id)"
    newer = dataclasses.replace(m, due=m.due + 60, event=event_id(m.rule, m.visitor, m.due + 60))
    assert skip_reason(m, CART, pending.scheduled(newer), 0, "cust-42", now) == "superseded by later activity"
    sent = pending.delivered(m, now)
    assert skip_reason(m, CART, sent, 0, "cust-42", now) == "already sent"  # a duplicate queue message
    assert Pending.decode(sent.encode()) == sent and Pending.decode(b"{") is None


def test_caps_count_earlier_follow_ups_of_the_rule() -> None:
    assert CART is not None  # per_day = 1, per_lifetime = 3
    m, pending = due_message()
    yesterday = Pending(pending.event, pending.due, None, [m.due - 90_000], ["a" * 24])
    assert skip_reason(m, CART, yesterday, 0, "c", m.due) is None
    today = Pending(pending.event, pending.due, None, [m.due - 3600], ["a" * 24])
    assert skip_reason(m, CART, today, 0, "c", m.due) == "cap: per_day"
    lifetime = Pending(pending.event, pending.due, None, [1, 2, 3], ["a" * 24, "b" * 24, "c" * 24])
    assert skip_reason(m, CART, lifetime, 0, "c", m.due) == "cap: per_lifetime"







def test_a_request_plan_schedules_qualifying_follow_ups_and_cancels_on_changes() -> None:
    s, attributes = cart_session()
    scheduled = plan_followups(RULES.followups, Before(cart=False, checkout=False), s, attributes, NOW + 5, SITE)
    assert [m.rule for m in scheduled.schedule] == ["cart-abandoned-email"]
    assert scheduled.cancel == [("browse-abandoned-email", "cart")]  # the cart took over from browsing
    assert not plan_followups(RULES.followups, Before.of(s), s, attributes, NOW + 5, "")  # no site: nothing to link to
    s.checkout_started = True
    checkout = plan_followups(RULES.followups, Before(cart=True, checkout=False), s, attrs(s), NOW + 9, SITE)
    assert checkout.schedule == [] and ("cart-abandoned-email", "checkout") in checkout.cancel
    bought = plan_followups(RULES.followups, Before.of(s), s, attrs(s), NOW + 9, SITE, purchased=True)
    assert sorted(bought.cancel) == [("browse-abandoned-email", "purchase"), ("cart-abandoned-email", "purchase")]




def followup_app(edge_cart: bool = True) -> Engine:
    return Engine(RULES, [b"test-secret"], "/* client */", edge_cart=edge_cart, followups_enabled=True)


def test_pages_and_beacons_plan_follow_ups_only_when_a_webhook_is_configured() -> None:
    app = followup_app(edge_cart=False)  # the cart comes from the dataLayer's beacons
    s = session()
    request = PageRequest(RequestContext(path="/collections/sneakers/products/aero-runner"), site=SITE)
    assert not app.plan_page(IsolateMemory(), request, s, None, None, NOW).followups.schedule  # nothing in the cart yet
    body = json.dumps({"events": [{"type": "add_to_cart", "items": [{"id": "SNK-001", "quantity": 1}], "value": 129}]})
    _, key_event = post_beacon(app, body.encode(), s, NOW + 20, SITE)
    assert [m.rule for m in key_event.followups.schedule] == ["cart-abandoned-email"]
    assert key_event.followups.schedule[0].due == NOW + 20 + 900
    page = app.plan_page(IsolateMemory(), PageRequest(RequestContext(path="/"), site=SITE), s, None, None, NOW + 60)
    assert [m.due for m in page.followups.schedule] == [NOW + 60 + 900]  # still here: later
    off = make_app()  # no webhook configured
    assert not off.plan_page(IsolateMemory(), request, session(), None, None, NOW).followups
    _, quiet = post_beacon(off, body.encode(), session(), NOW, SITE)
    assert not quiet.followups


def test_the_webhook_body_names_the_cart_the_suggestions_and_the_message() -> None:
    app = followup_app()
    m, _ = due_message()
    code = issue_code(b"k", CART, m, m.due)  # type: ignore[arg-type]
    body = app.followup_body(m, "cust-42", code, m.due)
    assert body["cartItems"][0]["id"] == "SNK-001" and len(body["recommendations"]) == 3
    assert body["message"]["title"] == "You left something in your cart" and body["offer"]["code"] == code.code  # type: ignore[union-attr]


def test_a_follow_up_code_is_redeemed_once_in_any_browser() -> None:
    app = followup_app()
    m, _ = due_message()
    code = issue_code(b"k", CART, m, m.due)
    assert code is not None
    shopper = session()
    reply, event = app.redeem_code(code, shopper, m.due + 60, True)
    assert reply.status == 303 and dict(reply.headers)["Location"] == "/cart"
    offer_cookie = next(v for k, v in reply.headers if k == "Set-Cookie" and v.startswith("nudge_offer="))
    redeemed = app.active_offer(parse_cookies(offer_cookie.split(";")[0]), m.due + 60)
    assert redeemed is not None and redeemed.code == code.code and redeemed.percent == 10
    assert event.code is not None and event.code.used == m.due + 60 and event.redeemed == 1
    again, _ = app.redeem_code(event.code, session(), m.due + 120, True)  # another browser, same code
    used = "nudge_msg=offer-used; Max-Age=120; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert ("Set-Cookie", used) in again.headers \
        or any(v.startswith("nudge_msg=offer-used") for k, v in again.headers if k == "Set-Cookie")
    assert not any(v.startswith("nudge_offer=") for k, v in again.headers if k == "Set-Cookie")
    same, _ = app.redeem_code(event.code, shopper, m.due + 120, True, active=redeemed)  # clicked twice
    assert same.status == 303 and not any(k == "Set-Cookie" for k, _ in same.headers)
    expired, _ = app.redeem_code(code, session(), code.expires, True)
    assert any(v.startswith("nudge_msg=offer-expired") for k, v in expired.headers if k == "Set-Cookie")
    missing, _ = app.redeem_code(None, session(), NOW, True)
    assert dict(missing.headers)["Location"] == "/"


def test_a_follow_up_outside_the_rules_rollout_is_not_sent() -> None:
    m, pending = due_message()
    assert CART is not None
    nobody = dataclasses.replace(CART, rollout=0.0)
    assert skip_reason(m, nobody, pending, 0, "c", m.due) == "outside the rule's rollout"
    assert skip_reason(m, dataclasses.replace(CART, rollout=100.0), pending, 0, "c", m.due) is None
