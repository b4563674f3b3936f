"""The beacon endpoint's wire format: parsing and validating what the client script reports.

Anything outside the schema is rejected whole with a reason (the endpoint answers 400 and leaves
the session untouched); nothing here trusts the client beyond small, bounded values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nudge.visitor.session import MAX_DWELL_PER_PAGE, clean_id

MAX_BODY = 8 * 1024
MAX_EVENTS = 50
MAX_ITEMS = 20
CART_EVENTS = ("add_to_cart", "remove_from_cart", "begin_checkout", "purchase", "view_item")
NUDGE_EVENTS = ("nudge_shown", "nudge_dismissed", "nudge_clicked")
MAX_USER_ID = 128
MAX_TOKEN = 512


class BeaconError(ValueError):
    """Why a beacon was rejected (the 400 answer's reason)."""


@dataclass(frozen=True)
class Item:
    id: str
    quantity: int


@dataclass(frozen=True)
class Event:
    type: str
    items: tuple[Item, ...] = ()
    value: float = 0.0
    rule: str | None = None
    user: str | None = None  # a bare identify's customer id: a browser's claim, never used as identity
    token: str | None = None  # identify: the shop's signed identity token (identity.verify_shop_token)
    id: str | None = None  # the client's event id: a replay of it in this visit is dropped


@dataclass(frozen=True)
class Beacon:
    pv: int | None  # the visit's page number the report is about
    dwell: int | None  # cumulative visible seconds on page view `pv`
    events: tuple[Event, ...] = field(default_factory=tuple)


def parse_beacon(body: bytes, content_type: str | None) -> Beacon:
    """A validated beacon; raises BeaconError with a reason a developer can act on."""
    if len(body) > MAX_BODY:
        raise BeaconError(f"body larger than {MAX_BODY} bytes")
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":  # never text/plain: an HTML form on another site can send that
        raise BeaconError("content-type must be application/json")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError beyond JSONDecodeError: an integer of more than 4,300 digits (CPython's int
        # limit); RecursionError: nesting deeper than the interpreter's C stack allows (Pyodide)
        reason = str(exc) if isinstance(exc, (UnicodeDecodeError, json.JSONDecodeError)) else "too large or deep"
        raise BeaconError(f"body is not JSON: {reason}") from exc
    if not isinstance(data, dict):
        raise BeaconError("body must be a JSON object")
    unknown = set(data) - {"pv", "dwell", "events"}
    if unknown:
        raise BeaconError(f"unknown field {sorted(unknown)[0]!r}")
    pv = None
    if "pv" in data:
        pv = data["pv"]
        if isinstance(pv, bool) or not isinstance(pv, int) or not 1 <= pv <= 65_535:
            raise BeaconError("pv: expected a page-view number")
    dwell = None
    if "dwell" in data:
        if pv is None:
            raise BeaconError("dwell: needs pv")
        dwell = _number(data["dwell"], "dwell", MAX_DWELL_PER_PAGE)
    events = data.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise BeaconError(f"events: expected a list of at most {MAX_EVENTS}")
    seen: set[str] = set()
    for i, e in enumerate(events):
        event_id = e.get("id") if isinstance(e, dict) else None
        if event_id is None:
            continue
        if clean_id(event_id, 32) is None:
            raise BeaconError(f"events[{i}].id: expected a short event id")
        if event_id in seen:
            raise BeaconError(f"events[{i}].id: duplicate event id {event_id!r}")
        seen.add(event_id)
    return Beacon(pv, None if dwell is None else int(dwell),
                  tuple(_with_id(e, f"events[{i}]") for i, e in enumerate(events)))


def _with_id(data: Any, where: str) -> Event:
    if not isinstance(data, dict) or "id" not in data:
        return _event(data, where)
    event = _event({k: v for k, v in data.items() if k != "id"}, where)
    return Event(event.type, event.items, event.value, event.rule, event.user, event.token, data["id"])


def _number(value: Any, where: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise BeaconError(f"{where}: expected a number")
    if not 0 <= value <= limit:
        raise BeaconError(f"{where}: expected 0..{limit:g}")
    return float(value)


def _event(data: Any, where: str) -> Event:
    if not isinstance(data, dict):
        raise BeaconError(f"{where}: expected an object")
    kind = data.get("type")
    if kind in NUDGE_EVENTS:
        if set(data) != {"type", "rule"}:
            raise BeaconError(f"{where}: a {kind} event has exactly `type` and `rule`")
        rule = clean_id(data["rule"])
        if rule is None:
            raise BeaconError(f"{where}.rule: expected a rule id")
        return Event(kind, rule=rule)
    if kind == "identify" and "token" in data:
        token = data["token"]
        if set(data) != {"type", "token"} or not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN \
                or not token.isascii() or not token.isprintable():
            raise BeaconError(f"{where}: an identify event has exactly `type` and `token` (the shop's signed token)")
        return Event(kind, token=token)
    if kind == "identify":  # the old form: parsed so the rest of the beacon counts, never identity
        user = data.get("user")
        if set(data) != {"type", "user"} or not isinstance(user, (str, int)) or isinstance(user, bool):
            raise BeaconError(f"{where}: an identify event has exactly `type` and `user` (string)")
        user = str(user).strip()
        if not user or len(user) > MAX_USER_ID or not user.isprintable():
            raise BeaconError(f"{where}.user: expected 1..{MAX_USER_ID} printable characters")
        return Event(kind, user=user)
    if kind in CART_EVENTS:
        if set(data) - {"type", "items", "value"}:
            raise BeaconError(f"{where}: unknown field {sorted(set(data) - {'type', 'items', 'value'})[0]!r}")
        items = data.get("items", [])
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise BeaconError(f"{where}.items: expected a list of at most {MAX_ITEMS}")
        value = _number(data.get("value", 0), f"{where}.value", 10_000_000)
        return Event(kind, tuple(_item(it, f"{where}.items[{i}]") for i, it in enumerate(items)), value)
    raise BeaconError(f"{where}.type: unknown event type {kind!r}")


def _item(data: Any, where: str) -> Item:
    if not isinstance(data, dict) or set(data) - {"id", "quantity"}:
        raise BeaconError(f"{where}: expected {{id, quantity}}")
    item_id = clean_id(data.get("id"))
    if item_id is None:
        raise BeaconError(f"{where}.id: expected a product id")
    qty = _number(data.get("quantity", 1), f"{where}.quantity", 999)
    return Item(item_id, int(qty))
