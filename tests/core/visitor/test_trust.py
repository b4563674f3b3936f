"""Issue 15, the trust boundary in the core: identity only from the shop (its origin header or a
token its server signed), orders only from the shop, exposure truth from the edge, replayed and
excess beacon events dropped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import msgpack
import pytest

from nudge.engine import Engine
from nudge.isolate_memory import IsolateMemory
from nudge.keys import key32
from nudge.kv_keys import order_key
from nudge.signing import Signer
from nudge.visitor.beacon import Beacon, Event, parse_beacon
from nudge.visitor.identity import MAX_TOKEN_LIFETIME, shop_token, verify_shop_token
from nudge.visitor.purchases import ShopOrder, parse_order_header
from nudge.visitor.session import MAX_SEEN_EVENTS, MAX_VISIT_EVENTS, SessionCodec, _to_wire
from nudge.visitor.tracking import apply_beacon, is_closed, record_served
from tests.core.factories import NOW, PRODUCTS, RULE, SECRET, make_app, repo_ruleset, session, visit

SHOP = b"shop-secret"


# -- identity tokens -------------------------------------------------------------------------------


def test_a_shop_token_names_its_customer_until_it_expires() -> None:
    token = shop_token(SHOP, "cust-42", NOW + 300)
    assert verify_shop_token(SHOP, token, NOW) == "cust-42"
    assert verify_shop_token(SHOP, token, NOW + 300) == "cust-42"
    assert verify_shop_token(SHOP, token, NOW + 301) is None  # expired
    assert verify_shop_token(SHOP, shop_token(SHOP, "cust-42", NOW + MAX_TOKEN_LIFETIME + 1), NOW) is None  # too long


def test_the_token_format_is_the_documented_one() -> None:
    """A shop builds it in any language: nudge1.<b64url id>.<expiry>.<hex HMAC-SHA256 of the rest>."""
    signed = "nudge1." + base64.urlsafe_b64encode("kund-ä".encode()).decode().rstrip("=") + f".{NOW + 60}"
    token = signed + "." + hmac.new(SHOP, signed.encode(), hashlib.sha256).hexdigest()
    assert token == shop_token(SHOP, "kund-ä", NOW + 60)
    assert verify_shop_token(SHOP, token, NOW) == "kund-ä"


@pytest.mark.parametrize("token", [
    "", "cust-42", "nudge1.Y3VzdC00Mg.1790000100", "nudge2.Y3VzdC00Mg.1790000100.00",
    "nudge1.Y3VzdC00Mg.1790000100." + "0" * 64, "nudge1.Y3VzdC00Mg.-5.00", "nudge1.Y3VzdC00Mg.1790000100.ü",
    "nudge1.!!!.1790000100.00", "x" * 600,
])
def test_malformed_or_forged_tokens_name_nobody(token: str) -> None:
    assert verify_shop_token(SHOP, token, NOW) is None


def test_a_token_signed_with_another_secret_or_without_a_shop_secret_names_nobody() -> None:
    token = shop_token(b"attacker", "cust-42", NOW + 60)
    assert verify_shop_token(SHOP, token, NOW) is None
    assert verify_shop_token(None, shop_token(SHOP, "cust-42", NOW + 60), NOW) is None
    assert verify_shop_token(SHOP, shop_token(SHOP, "", NOW + 60), NOW) is None
    tampered = shop_token(SHOP, "cust-42", NOW + 60).replace("Y3VzdC00Mg", "Y3VzdC00Mw")  # cust-43
    assert verify_shop_token(SHOP, tampered, NOW) is None


def test_identify_events_carry_a_token_or_a_claim_the_edge_ignores() -> None:
    body = json.dumps({"events": [{"type": "identify", "token": "nudge1.a.1.b"}]}).encode()
    b = parse_beacon(body, "application/json")
    assert b.events == (Event("identify", token="nudge1.a.1.b"),)
    app = Engine(repo_ruleset(), SECRET, "/* client */", shop_secret=SHOP)
    assert app.identity_from_token(shop_token(SHOP, "c-1", NOW + 60), NOW) == "c-1"
    bare = parse_beacon(b'{"events": [{"type": "identify", "user": "victim"}]}', "application/json")
    assert bare.events[0].token is None  # nothing the edge could verify: never identity
    s = session()
    _, key = app.apply_beacon(IsolateMemory(), bare, s, NOW, secure=True)
    assert s.identity is None and not key and key.events == []


# -- orders ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header, order", [
    ("id=NDG-1; value=129.00", ShopOrder("NDG-1", 129.0)),
    ("value=5;id=A1;currency=EUR", ShopOrder("A1", 5.0)),
    ("id=A1", ShopOrder("A1", 0.0)),
    ("ID = A1 ; Value = 0.5", ShopOrder("A1", 0.5)),
])
def test_order_headers(header: str, order: ShopOrder) -> None:
    assert parse_order_header(header) == order


@pytest.mark.parametrize("header", [
    None, "", "value=12", "id=; value=1", "id=A1; value=-1", "id=A1; value=1e9", "id=A1; value=nan",
    "id=A1; value=99999999", "id=" + "x" * 65, "id=A\x01", "id=ä", "id=A1; value=1.2.3", "x" * 600,
])
def test_bad_order_headers_count_nothing(header: str | None) -> None:
    assert parse_order_header(header) is None


def test_order_keys_are_keyed_hashes() -> None:
    assert order_key(b"k", "NDG-1") == order_key(b"k", "NDG-1") != order_key(b"k", "NDG-2")
    assert order_key(b"k", "NDG-1") != order_key(b"other", "NDG-1") and "NDG" not in order_key(b"k", "NDG-1")


# -- exposure truth and replays ------------------------------------------------------------------------


def beacon(*events: Event) -> Beacon:
    return Beacon(None, None, events)


def test_reports_about_a_nudge_never_served_are_dropped() -> None:
    s = session()
    counted = apply_beacon(s, beacon(Event("nudge_shown", rule="r"), Event("nudge_clicked", rule="r"),
                                     Event("nudge_dismissed", rule="r")), NOW)
    assert counted == [] and s.shown.get(key32("r"), 0) == 0 and not is_closed(s, "r")


def test_one_reveal_per_page_served_and_one_click_once_seen() -> None:
    s = session()
    record_served(s, "r", revealed=False)
    assert len(apply_beacon(s, beacon(Event("nudge_shown", rule="r"), Event("nudge_shown", rule="r")), NOW)) == 1
    assert s.shown.get(key32("r"), 0) == 1
    assert len(apply_beacon(s, beacon(Event("nudge_clicked", rule="r"), Event("nudge_clicked", rule="r")), NOW)) == 1
    assert apply_beacon(s, beacon(Event("nudge_dismissed", rule="r")), NOW) == []  # closed: one action per visit
    record_served(s, "banner", revealed=True)  # shown as the page loaded: the edge counted it
    assert apply_beacon(s, beacon(Event("nudge_shown", rule="banner")), NOW) == []
    assert len(apply_beacon(s, beacon(Event("nudge_dismissed", rule="banner")), NOW)) == 1


def test_the_page_plan_records_what_it_rendered() -> None:
    app = make_app()
    s, body = visit(app, ["/collections/sneakers", *PRODUCTS], dwell=300)
    assert f'data-nudge-rule="{RULE}"' in body  # the story's modal, rendered hidden
    reported = beacon(Event("nudge_shown", rule=RULE), Event("nudge_shown", rule="cart-reminder"),
                      Event("nudge_clicked", rule=RULE))
    _, key = app.apply_beacon(IsolateMemory(), reported, s, NOW, secure=True)
    assert [(e.kind, e.rule) for e in key.events] == [("impression", RULE), ("click", RULE)]


def test_a_click_whose_reveal_beacon_is_late_brings_its_impression_once() -> None:
    s = session()
    record_served(s, "r", revealed=False)
    counted = apply_beacon(s, beacon(Event("nudge_clicked", rule="r")), NOW)
    assert [e.type for e in counted] == ["nudge_shown", "nudge_clicked"] and s.shown.get(key32("r"), 0) == 1
    assert apply_beacon(s, beacon(Event("nudge_shown", rule="r"), Event("nudge_clicked", rule="r")), NOW) == []


def test_event_ids_are_counted_once_per_visit_across_beacons() -> None:
    s = session()
    first = apply_beacon(s, beacon(Event("begin_checkout", id="1.1"), Event("purchase", value=5, id="1.2")), NOW)
    assert len(first) == 2
    assert apply_beacon(s, beacon(Event("purchase", value=5, id="1.2")), NOW) == []  # the replay
    for i in range(MAX_SEEN_EVENTS):
        apply_beacon(s, beacon(Event("begin_checkout", id=f"2.{i}")), NOW)
    assert len(s.seen) == MAX_SEEN_EVENTS


def test_client_events_are_capped_per_visit() -> None:
    s = session()
    total = sum(len(apply_beacon(s, beacon(*[Event("purchase", value=1)] * 50), NOW)) for _ in range(10))
    assert total == MAX_VISIT_EVENTS and s.reported == MAX_VISIT_EVENTS


def test_an_order_counts_once_per_visit() -> None:
    app = make_app()
    s = session()
    assert app.order_seen(ShopOrder("A", 10.0), s, NOW) is not None
    assert app.order_seen(ShopOrder("A", 10.0), s, NOW) is None
    assert app.order_seen(ShopOrder("B", 2.5), s, NOW) is not None
    assert (s.orders, s.revenue) == (2, 1250)


def test_exposures_and_seen_ids_survive_the_cookie_and_old_cookies_still_load() -> None:
    codec = SessionCodec(Signer(SECRET, "session"))
    s = session()
    record_served(s, "r", revealed=False)
    apply_beacon(s, beacon(Event("begin_checkout", id="1.1")), NOW)
    back = codec.decode(codec.encode(s))
    assert back.served == s.served and back.seen == s.seen and back.reported == 1
    old = Signer(SECRET, "session").sign(msgpack.packb(_to_wire(s)[:19], use_bin_type=True))
    legacy = codec.decode(old)  # a cookie from before this change keeps its visitor, with nothing served
    assert legacy.visitor == s.visitor and legacy.served == {} and legacy.seen == []
