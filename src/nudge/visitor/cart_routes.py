"""The shop's cart endpoints (rules/site.toml `[cart]`): the config, its checks, and matching a request.

A route is ``"[GET |POST ]/path[?query]"`` (POST when the method is left out). ``{item}`` and
``{quantity}`` capture from the path (one segment, or the part of it before literal text that
follows: ``/basket/add/{item}/``) or as a whole query value (``GET /?add-to-cart={item}``); other
query values must match as written, where ``*`` is any text. Query parameters the route does not
name are ignored; a ``{quantity}`` parameter may be missing. What a route cannot capture comes from
the request body (`cart.parse_cart_lines`). A route that can never match is a config error, so
`nudge rules check` reports it instead of the edge silently seeing nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from nudge.visitor.pages import same_site_path

ACTIONS = ("add", "remove", "change")  # change: set an item's quantity (0 removes it)
METHODS = ("GET", "POST")
MAX_ROUTES = 20  # per action
MAX_FIELDS = 4  # names per item_field / quantity_field
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CAPTURES = ("item", "quantity")
_FIELD = re.compile(r"[A-Za-z0-9_.\-\[\]]+")  # a body field name, with {n} for formsets
RESERVED = "/_nudge"  # nudge's own endpoints never reach the shop


class CartConfigError(ValueError):
    """A `[cart]` value that is wrong; `field` is its name inside the table (`add[1]`, `truth_url`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class CartRoute:
    action: str
    method: str
    path: re.Pattern[str]
    query: tuple[tuple[str, str], ...]  # (name, "{item}" / "{quantity}" / a value with * globs)
    written: str  # as in site.toml, for messages


@dataclass(frozen=True)
class RouteMatch:
    """A request to a cart route, with what the URL carried (raw text; the body may add the rest)."""

    action: str
    method: str
    item: str | None = None
    quantity: str | None = None


@dataclass(frozen=True)
class CartTruthSource:
    """The shop's cart as JSON (`truth_url`), read after a cart change: where its figures are."""

    url: str
    items: str  # dotted path to the item count
    value: str | None  # dotted path to the cart value, or None
    scale: float  # the value times this is in the shop's currency (0.01 for cents)


@dataclass(frozen=True)
class CartEndpoints:
    """The shop's cart endpoints, watched at the edge so the cart is right even without JavaScript."""

    routes: tuple[CartRoute, ...]
    item_fields: tuple[str, ...] = ("id",)
    quantity_fields: tuple[str, ...] = ("quantity",)
    truth: CartTruthSource | None = None


def parse_cart_config(table: dict[str, Any]) -> CartEndpoints:
    """The `[cart]` table checked; raises CartConfigError naming the field."""
    known = set(ACTIONS) | {"item_field", "quantity_field", "truth_url", "truth_items", "truth_value",
                            "truth_value_scale"}
    for key in table:
        if key not in known:
            raise CartConfigError(key, "unknown field")
    routes: list[CartRoute] = []
    for action in ACTIONS:
        for field, text in _strings(table, action, MAX_ROUTES, 300):
            routes.append(parse_route(action, text, field))
    if not routes:
        raise CartConfigError("add", "required: at least one of add, remove, change")
    _no_duplicates(routes)
    items = _field_names(table, "item_field", "id")
    quantities = _field_names(table, "quantity_field", "quantity")
    if any("{n}" in f for f in items) != any("{n}" in f for f in quantities):
        raise CartConfigError("quantity_field", "a formset needs {n} in both item_field and quantity_field "
                                                "(\"form-{n}-id\", \"form-{n}-quantity\")")
    return CartEndpoints(tuple(routes), items, quantities, _truth(table))


def parse_route(action: str, text: str, field: str) -> CartRoute:
    """One route, or CartConfigError when it could never match a request the shop answers."""
    method, sep, target = text.strip().partition(" ")
    if not sep:
        method, target = "POST", text.strip()
    elif method not in METHODS:
        raise CartConfigError(field, f"method {method!r}: use GET or POST (or leave it out for POST)")
    target = target.strip()
    if not same_site_path(target) or "#" in target:
        raise CartConfigError(field, "must be a same-site path starting with a single '/', like \"POST /cart/add\"")
    path, _, query = target.partition("?")
    if path == RESERVED or path.startswith(RESERVED + "/"):
        raise CartConfigError(field, f"{RESERVED}/ is nudge's own: those requests never reach the shop")
    names = [m.group(1) for m in _PLACEHOLDER.finditer(target)]
    for name in names:
        if name not in _CAPTURES:
            raise CartConfigError(field, f"unknown placeholder {{{name}}}: use {{item}} or {{quantity}}")
    for name in set(names):
        if names.count(name) > 1:
            raise CartConfigError(field, f"{{{name}}} appears twice")
    pattern, template = _path_pattern(path), _query_template(query, field)
    if method == "GET" and "item" not in names:
        raise CartConfigError(field, "a GET has no body: put {item} in the path or query "
                                     "(\"GET /?add-to-cart={item}\")")
    if method == "GET" and action == "change" and "quantity" not in names:
        raise CartConfigError(field, "a GET change needs {quantity} in the path or query")
    return CartRoute(action, method, pattern, template, text)


def match_route(cart: CartEndpoints | None, method: str, path: str, query: str) -> RouteMatch | None:
    """The first route this request matches (routes in add, remove, change order), or None."""
    if cart is None or method not in METHODS:
        return None
    for route in cart.routes:
        if route.method != method:
            continue
        m = route.path.fullmatch(path)
        if m is None:
            continue
        captured = _query_captures(route.query, query) if route.query else {}
        if captured is None:
            continue
        item = m.groupdict().get("item")
        quantity = m.groupdict().get("quantity")
        return RouteMatch(route.action, method, unquote(item) if item else captured.get("item"),
                          unquote(quantity) if quantity else captured.get("quantity"))
    return None


def _path_pattern(path: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(path):
        out.append(_glob(path[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(_glob(path[pos:]))
    return re.compile("".join(out))


def _glob(text: str) -> str:
    return ".*".join(re.escape(part) for part in text.split("*"))


def _query_template(query: str, field: str) -> tuple[tuple[str, str], ...]:
    out = []
    for part in query.split("&") if query else []:
        name, sep, value = part.partition("=")
        if not sep or not name or _PLACEHOLDER.search(name) or "*" in name:
            raise CartConfigError(field, f"query part {part!r}: write name=value (\"add-to-cart={{item}}\")")
        if _PLACEHOLDER.search(value) and value not in ("{item}", "{quantity}"):
            raise CartConfigError(field, f"query part {part!r}: a placeholder must be the whole value")
        out.append((name, value))
    return tuple(out)


def _query_captures(template: tuple[tuple[str, str], ...], query: str) -> dict[str, str] | None:
    """What the query's values give the route's placeholders; None when the query does not match."""
    try:
        given: dict[str, str] = {}
        for name, text in parse_qsl(query, keep_blank_values=True, max_num_fields=50):
            given.setdefault(name, text)
    except ValueError:  # more than max_num_fields
        return None
    captured = {}
    for name, expected in template:
        value = given.get(name)
        if expected == "{quantity}":
            if value is not None:
                captured["quantity"] = value
        elif value is None:
            return None
        elif expected == "{item}":
            captured["item"] = value
        elif not re.fullmatch(_glob(expected), value):
            return None
    return captured


def _no_duplicates(routes: list[CartRoute]) -> None:
    seen: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
    for route in routes:
        key = (route.method, route.path.pattern, route.query)
        if key in seen:
            raise CartConfigError(route.action, f"{route.written!r} is also under {seen[key]}: "
                                                "the first one would always win")
        seen[key] = route.action


def _strings(table: dict[str, Any], key: str, limit: int, length: int) -> list[tuple[str, str]]:
    """(field name, text) of a key that takes a string or a list of strings."""
    value = table.get(key)
    if value is None:
        return []
    values, many = (value, True) if isinstance(value, list) else ([value], False)
    if many and not 1 <= len(values) <= limit:
        raise CartConfigError(key, f"expected 1..{limit} entries")
    out = []
    for i, text in enumerate(values):
        field = f"{key}[{i}]" if many else key
        if not isinstance(text, str):
            raise CartConfigError(field, f"expected str, got {type(text).__name__}")
        if not text or len(text) > length:
            raise CartConfigError(field, f"expected 1..{length} characters")
        out.append((field, text))
    return out


def _field_names(table: dict[str, Any], key: str, default: str) -> tuple[str, ...]:
    names = [text for _, text in _strings(table, key, MAX_FIELDS, 64)] or [default]
    for name in names:
        if not _FIELD.fullmatch(name.replace("{n}", "0")):
            raise CartConfigError(key, f"{name!r}: a form or JSON field name (use {{n}} for a formset's number)")
    return tuple(names)


def _truth(table: dict[str, Any]) -> CartTruthSource | None:
    if "truth_url" not in table:
        for key in ("truth_items", "truth_value", "truth_value_scale"):
            if key in table:
                raise CartConfigError(key, "needs truth_url (the shop's cart as JSON, like \"/cart.js\")")
        return None
    url = table["truth_url"]
    if not isinstance(url, str) or len(url) > 300:
        raise CartConfigError("truth_url", "expected a path of at most 300 characters, like \"/cart.js\"")
    if not same_site_path(url) or url == RESERVED or url.startswith(RESERVED + "/"):
        raise CartConfigError("truth_url", "must be the shop's own same-site path, like \"/cart.js\"")
    items = (_strings(table, "truth_items", 1, 64) or [("", "item_count")])[0][1]
    value = (_strings(table, "truth_value", 1, 64) or [("", "")])[0][1] or None
    scale = table.get("truth_value_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1000:
        raise CartConfigError("truth_value_scale", "expected a number above 0, like 0.01 for cents")
    return CartTruthSource(url, items, value, float(scale))
