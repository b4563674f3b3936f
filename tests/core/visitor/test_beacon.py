from __future__ import annotations

import json

import pytest

from nudge.visitor.beacon import Beacon, BeaconError, Event, Item, parse_beacon


def parse(data: object, content_type: str = "application/json") -> Beacon:
    return parse_beacon(json.dumps(data).encode(), content_type)


def test_valid_beacon() -> None:
    b = parse({"pv": 7, "dwell": 12.7, "events": [
        {"type": "add_to_cart", "items": [{"id": "sku-1", "quantity": 2}], "value": 20},
        {"type": "nudge_shown", "rule": "r1"},
    ]})
    assert b == Beacon(7, 12, (Event("add_to_cart", (Item("sku-1", 2),), 20.0), Event("nudge_shown", rule="r1")))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "JSON object"),
        ({"pv": 1, "extra": 1}, "unknown field 'extra'"),
        ({"pv": "<script>"}, "pv"),
        ({"pv": 0}, "pv"),
        ({"pv": True}, "pv"),
        ({"dwell": 5}, "needs pv"),
        ({"pv": 1, "dwell": -1}, "dwell"),
        ({"pv": 1, "dwell": 10**9}, "dwell"),
        ({"pv": 1, "dwell": True}, "dwell"),
        ({"events": [{"type": "hack"}]}, "unknown event type"),
        ({"events": [{"type": "nudge_shown"}]}, "exactly"),
        ({"events": [{"type": "add_to_cart", "items": [{"id": ""}]}]}, "product id"),
        ({"events": [{"type": "add_to_cart", "items": [{"id": "a", "quantity": 5000}]}]}, "quantity"),
        ({"events": [{"type": "purchase", "value": "lots"}]}, "value"),
        ({"events": [{"type": "purchase"}] * 51}, "at most 50"),
        ({"events": [{"type": "purchase", "id": "e1"}, {"type": "begin_checkout", "id": "e1"}]}, "duplicate event id"),
        ({"events": [{"type": "purchase", "id": "<x>"}]}, "event id"),
        ({"events": [{"type": "purchase", "value": float("nan")}]}, "value"),
        ({"events": [{"type": "purchase", "value": 1e12}]}, "value"),
    ],
)
def test_invalid_beacons_say_why(body: object, reason: str) -> None:
    with pytest.raises(BeaconError, match=reason):
        parse(body)


def test_event_ids_are_optional_and_unique() -> None:
    b = parse({"events": [{"type": "begin_checkout", "id": "a1"}, {"type": "purchase", "id": "a2", "value": 5}]})
    assert [e.type for e in b.events] == ["begin_checkout", "purchase"]


def test_transport_level_rejections() -> None:
    with pytest.raises(BeaconError, match="content-type"):
        parse({}, "application/x-www-form-urlencoded")
    with pytest.raises(BeaconError, match="larger"):
        parse_beacon(b"{" + b" " * 9000 + b"}", "application/json")
    with pytest.raises(BeaconError, match="not JSON"):
        parse_beacon(b"\xff\xfe", "application/json")


@pytest.mark.parametrize("body", [
    b'{"pv": ' + b"1" * 5000 + b"}",  # past CPython's 4,300-digit int limit: json raises a plain ValueError
    b'{"events": [{"type": "purchase", "value": ' + b"9" * 4301 + b"}]}",
])
def test_numbers_too_long_to_convert_are_rejected_with_a_reason(body: bytes) -> None:
    with pytest.raises(BeaconError, match="not JSON: too large or deep"):
        parse_beacon(body, "application/json")
