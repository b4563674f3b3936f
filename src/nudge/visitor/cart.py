"""Cart changes seen at the edge: the item and quantity in a POST to the shop's cart endpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from nudge.rules.model import CartEndpoints
from nudge.visitor.session import MAX_CART_LINES, MAX_MONEY, MAX_TEXT, Session, clean_id

MAX_CART_BODY = 16 * 1024


@dataclass(frozen=True)
class CartChange:
    action: str  # "add" or "remove"
    item: str
    quantity: int


def cart_action(cart: CartEndpoints | None, method: str, path: str) -> str | None:
    if cart is None or method != "POST":
        return None
    if path == cart.add:
        return "add"
    if cart.remove and path == cart.remove:
        return "remove"
    return None


def parse_cart_body(cart: CartEndpoints, action: str, body: bytes, content_type: str | None) -> CartChange | None:
    """The change a cart POST asks for; None when the body is not one we understand."""
    if len(body) > MAX_CART_BODY:
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if media == "application/json":
            data = json.loads(text)
            if not isinstance(data, dict):
                return None
            item, quantity = data.get(cart.item_field), data.get(cart.quantity_field, 1)
        elif media == "application/x-www-form-urlencoded":
            form = parse_qs(text, max_num_fields=50)
            items = form.get(cart.item_field)
            item = items[0] if items else None
            quantity = (form.get(cart.quantity_field) or ["1"])[0]
        else:
            return None
        qty = int(quantity) if not isinstance(quantity, bool) else 0
    except (UnicodeDecodeError, ValueError, TypeError):
        return None
    item_id = clean_id(str(item) if isinstance(item, (str, int)) else None, MAX_TEXT)
    if item_id is None or not 1 <= qty <= 999:
        return None
    return CartChange(action, item_id, qty)


def apply_cart_change(session: Session, change: CartChange, now: int, price: float | None = None) -> None:
    """Applies a cart change; with the item's `price` (from the learned catalog) the cart value too."""
    cents = int(round(price * 100)) * change.quantity if price is not None else 0
    if change.action == "add":
        if change.item in session.cart or len(session.cart) < MAX_CART_LINES:
            session.cart[change.item] = min(session.cart.get(change.item, 0) + change.quantity, 999)
            session.cart_value = min(session.cart_value + cents, MAX_MONEY)
    else:
        session.cart_value = max(0, session.cart_value - cents)
        left = session.cart.get(change.item, 0) - change.quantity
        if left > 0:
            session.cart[change.item] = left
        else:
            session.cart.pop(change.item, None)
        if not session.cart:
            session.cart_value = 0
    session.cart_changed = now
    session.last_seen = now
