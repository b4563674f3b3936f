"""Cart changes seen at the edge: what a request to one of the shop's cart routes (`cart_routes`) asks.

The item and quantity come from the route's URL placeholders, else from the body: form-encoded,
multipart form-data or JSON, with the `[cart]` field names (`id`/`quantity` by default), Shopify's
lines (`items: [{id, quantity}]`, form `items[][id]`), or a formset (`form-{n}-id` with
`form-{n}-quantity`: each n sets one line's quantity; a ticked `form-{n}-DELETE` removes the line).
A Django formset posted whole (it carries `form-TOTAL_FORMS`, as a basket page's form does: Django
Oscar's) lists every line of the cart, so on a `change` route it *replaces* the cart's lines: lines
it does not list are gone (`replace_cart_lines`). Anything we do not understand is no change, never
an error: the shop's answer passes through either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from nudge.visitor.cart_routes import CartEndpoints, RouteMatch
from nudge.visitor.session import (
    CART_FROM_EDGE,
    MAX_CART_LINES,
    MAX_MONEY,
    MAX_TEXT,
    Session,
    clean_id,
)

MAX_CART_BODY = 16 * 1024
MAX_QUANTITY = 999
_ITEMS_FIELD = re.compile(r"items\[(\d*)\]\[([^\]]+)\]")  # Shopify's form lines: items[][id], items[0][id]


@dataclass(frozen=True)
class CartChange:
    action: str  # "add", "remove" or "change" (set the quantity; 0 removes the line)
    item: str
    quantity: int


@dataclass(frozen=True)
class CartRequest:
    """What one request to a cart route asks for."""

    changes: list[CartChange]
    replaces: bool = False  # a whole formset on a change route: the cart becomes exactly `changes`


def cart_changes(cart: CartEndpoints, match: RouteMatch, body: bytes | None,
                 content_type: str | None) -> list[CartChange]:
    """The changes a cart request asks for (several for Shopify's `items[]` or a formset); [] when
    neither the URL nor the body says which item."""
    return read_cart_request(cart, match, body, content_type).changes


def read_cart_request(cart: CartEndpoints, match: RouteMatch, body: bytes | None,
                      content_type: str | None) -> CartRequest:
    """The changes a cart request asks for, and whether they replace the cart's lines."""
    fields = _body_fields(body or b"", content_type) if match.method == "POST" else None
    plain = _pairs_dict(fields) if isinstance(fields, list) else fields or {}
    quantity = match.quantity if match.quantity is not None else _first(plain, cart.quantity_fields)
    if match.item is not None:  # the item is in the URL; the quantity may be in the body
        change = _change(match.action, match.item, quantity)
        return CartRequest([change] if change else [])
    lines: list[tuple[str, Any, Any]] = []
    if isinstance(fields, list):  # form pairs
        if match.action == "change" and _whole_formset(cart, fields):
            whole = [_change(*line) for line in _formset_lines(cart, fields)]
            return CartRequest([c for c in whole if c is not None], replaces=True)
        lines = _formset_lines(cart, fields) or _form_item_lines(cart, fields, match.action)
    elif isinstance(fields, dict) and isinstance(fields.get("items"), list):
        lines = [(match.action, _first(line, cart.item_fields), _first(line, cart.quantity_fields))
                 for line in fields["items"] if isinstance(line, dict)]
    if not lines and plain:
        lines = [(match.action, _first(plain, cart.item_fields), quantity)]
    changes = [_change(action, item, quantity) for action, item, quantity in lines[:MAX_CART_LINES]]
    return CartRequest([c for c in changes if c is not None])


def _change(action: str, item: Any, quantity: Any) -> CartChange | None:
    item_id = clean_id(str(item) if isinstance(item, (str, int)) and not isinstance(item, bool) else None, MAX_TEXT)
    if quantity is None or quantity == "":
        if action == "change":
            return None  # a change must say the quantity
        quantity = 1
    try:
        qty = int(quantity) if isinstance(quantity, (str, int)) and not isinstance(quantity, bool) else -1
    except ValueError:
        return None
    low = 0 if action == "change" else 1
    if item_id is None or not low <= qty <= MAX_QUANTITY:
        return None
    return CartChange(action, item_id, qty)


def _first(fields: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((fields[n] for n in names if "{n}" not in n and n in fields), None)


def _body_fields(body: bytes, content_type: str | None) -> dict[str, Any] | list[tuple[str, str]] | None:
    """A JSON object, or the (name, value) pairs of a form; None for anything else."""
    if len(body) > MAX_CART_BODY:
        return None
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    try:
        text = body.decode("utf-8")
        if media == "application/json":
            data = json.loads(text)
            return data if isinstance(data, dict) else None
        if media == "application/x-www-form-urlencoded":
            return parse_qsl(text, keep_blank_values=True, max_num_fields=200)
        if media == "multipart/form-data":
            return _multipart_pairs(body, params)
    except (UnicodeDecodeError, ValueError):
        return None
    return None


def _multipart_pairs(body: bytes, params: str) -> list[tuple[str, str]] | None:
    """The text fields of a multipart/form-data body (files are skipped): a small parser, bounded by
    MAX_CART_BODY, for the few fields a cart form has."""
    m = re.search(r'boundary="?([^";]{1,70})"?', params)
    if m is None:
        return None
    pairs = []
    for part in body.split(b"--" + m.group(1).encode("ascii", "replace"))[1:201]:
        if part.startswith(b"--"):
            break
        head, sep, value = part.partition(b"\r\n\r\n")
        disposition = re.search(rb'(?im)^content-disposition:\s*form-data;([^\r\n]*)', head)
        if not sep or disposition is None or b"filename=" in disposition.group(1):
            continue
        name = re.search(rb'\bname="([^"]*)"', disposition.group(1))
        if name is not None:
            pairs.append((name.group(1).decode("utf-8"), value.removesuffix(b"\r\n").decode("utf-8")))
    return pairs


def _pairs_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _formset_lines(cart: CartEndpoints, pairs: list[tuple[str, str]]) -> list[tuple[str, Any, Any]]:
    """Each form number n with both an item and a quantity field: that line's quantity is set (0
    when Django's `DELETE` box of that form is ticked)."""
    item_names = [_numbered(n) for n in cart.item_fields if "{n}" in n]
    quantity_names = [_numbered(n) for n in cart.quantity_fields if "{n}" in n]
    delete_names = [_numbered(f"{prefix}{{n}}-DELETE") for prefix in _formset_prefixes(cart)]
    items: dict[str, str] = {}
    quantities: dict[str, str] = {}
    deleted: dict[str, str] = {}
    for name, value in pairs:
        for pattern, into in ([(p, items) for p in item_names] + [(p, quantities) for p in quantity_names]
                              + [(p, deleted) for p in delete_names]):
            m = pattern.fullmatch(name)
            if m is not None:
                into.setdefault(m.group(1), value)
    return [("change", items[n], 0 if _ticked(deleted.get(n)) else quantities[n]) for n in items if n in quantities]


def _formset_prefixes(cart: CartEndpoints) -> list[str]:
    """The Django formset prefixes (`form-` of `form-{n}-id`) of the item fields."""
    return [n.split("{n}")[0] for n in cart.item_fields if "{n}" in n and n.split("{n}")[0].endswith("-")]


def _whole_formset(cart: CartEndpoints, pairs: list[tuple[str, str]]) -> bool:
    """The form carries Django's management form (`form-TOTAL_FORMS`): it is the whole formset."""
    totals = {f"{prefix}TOTAL_FORMS" for prefix in _formset_prefixes(cart)}
    return any(name in totals for name, _ in pairs)


def _ticked(value: str | None) -> bool:
    """A checkbox as Django reads it: absent, empty or "false" is unticked."""
    return value is not None and value.lower() not in ("", "false")


def _numbered(name: str) -> re.Pattern[str]:
    return re.compile(r"(\d{1,3})".join(re.escape(part) for part in name.split("{n}")))


def _form_item_lines(cart: CartEndpoints, pairs: list[tuple[str, str]], action: str) -> list[tuple[str, Any, Any]]:
    """Shopify's form lines: `items[][id]=1&items[][quantity]=2` (a new line at each id) or `items[0][id]`."""
    lines: dict[str, dict[str, str]] = {}
    count = 0
    for name, value in pairs:
        m = _ITEMS_FIELD.fullmatch(name)
        if m is None:
            continue
        index, key = m.groups()
        if not index:
            if key in cart.item_fields:
                count += 1
            index = f"_{count}"
        lines.setdefault(index, {}).setdefault(key, value)
    return [(action, _first(line, cart.item_fields), _first(line, cart.quantity_fields)) for line in lines.values()]


def apply_cart_change(session: Session, change: CartChange, now: int, price: float | None = None) -> None:
    """Applies a cart change seen at the edge; with the item's `price` (from the learned catalog)
    the cart value too. The visit's cart now comes from the edge: client cart events stop counting."""
    cents = int(round(price * 100)) if price is not None else 0
    had = session.cart.get(change.item, 0)
    if change.action == "add":
        want = had + change.quantity
    elif change.action == "remove":
        want = had - change.quantity
    else:
        want = change.quantity
    want = max(0, min(want, MAX_QUANTITY))
    if change.item not in session.cart and len(session.cart) >= MAX_CART_LINES:
        want = 0  # bounded: a 21st line is not kept
    if want:
        session.cart[change.item] = want
    else:
        session.cart.pop(change.item, None)
    delta = (want - had) * cents
    session.cart_value = 0 if not session.cart else max(0, min(session.cart_value + delta, MAX_MONEY))
    session.cart_changed = now
    session.last_seen = now
    session.cart_source = CART_FROM_EDGE
    session.edge_cart_seen = True



def replace_cart_lines(session: Session, changes: list[CartChange], now: int) -> None:
    """A whole formset seen at the edge: the cart becomes exactly its lines (those it does not list
    were removed in the shop). Its ids are the shop's line ids (a Django model formset's `id` is the
    line's key), which name no product: the value keeps the cart's average item price before."""
    items_before = sum(session.cart.values())
    average = session.cart_value / items_before if items_before else 0.0
    lines: dict[str, int] = {}
    for change in changes:
        if change.quantity and (change.item in lines or len(lines) < MAX_CART_LINES):
            lines[change.item] = change.quantity
    session.cart = lines
    session.cart_value = max(0, min(int(round(average * sum(lines.values()))), MAX_MONEY))
    session.cart_changed = now
    session.last_seen = now
    session.cart_source = CART_FROM_EDGE
    session.edge_cart_seen = True
