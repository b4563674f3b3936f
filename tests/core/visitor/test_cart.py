from __future__ import annotations

import json

import pytest

from nudge.rules.load import load_ruleset
from nudge.rules.toml_fields import RuleError
from nudge.visitor.beacon import Beacon, Event, Item
from nudge.visitor.cart import CartChange, apply_cart_change, cart_changes
from nudge.visitor.cart_routes import CartConfigError, RouteMatch, match_route, parse_cart_config
from nudge.visitor.tracking import apply_beacon
from tests.core.factories import NOW, repo_rule_files, repo_ruleset, session

CART = repo_ruleset().cart
FORM = "application/x-www-form-urlencoded"


def test_repo_site_config_is_the_old_syntax() -> None:
    """`add = "/cart/add"` (no method) is a POST route with the item in the body, as before."""
    assert CART is not None
    assert [(r.action, r.method, r.written) for r in CART.routes] == [("add", "POST", "/cart/add"),
                                                                     ("remove", "POST", "/cart/remove")]
    assert (CART.item_fields, CART.quantity_fields, CART.truth) == (("sku",), ("qty",), None)


@pytest.mark.parametrize(
    ("method", "path", "query", "action"),
    [("POST", "/cart/add", "", "add"), ("POST", "/cart/remove", "", "remove"), ("GET", "/cart/add", "", None),
     ("POST", "/cart/add/x", "", None), ("POST", "/cart", "", None), ("POST", "/cart/add", "x=1", "add"),
     ("PUT", "/cart/add", "", None)],
)
def test_repo_routes(method: str, path: str, query: str, action: str | None) -> None:
    match = match_route(CART, method, path, query)
    assert (match.action if match else None) == action
    assert match_route(None, method, path, query) is None


ROUTES = parse_cart_config({
    "add": ["POST /basket/add/{item}/", "GET /*?add-to-cart={item}&quantity={quantity}",
            "GET /p/{item}-{quantity}/buy", "POST /?wc-ajax=add*"],
    "remove": "GET /cart/?remove_item={item}",
    "change": "POST /cart/{item}/qty/{quantity}",
})


@pytest.mark.parametrize(
    ("method", "path", "query", "match"),
    [
        ("POST", "/basket/add/17/", "", RouteMatch("add", "POST", "17")),
        ("POST", "/basket/add/17", "", None),  # exact: Django would not take it either
        ("POST", "/basket/add/a/b/", "", None),  # one segment
        ("GET", "/shop/", "add-to-cart=12", RouteMatch("add", "GET", "12")),
        ("GET", "/", "quantity=2&add-to-cart=12&utm_source=x", RouteMatch("add", "GET", "12", "2")),
        ("GET", "/shop/", "add-to-cart=%E2%9C%93", RouteMatch("add", "GET", "\u2713")),
        ("GET", "/shop/", "orderby=price", None),
        ("POST", "/shop/", "add-to-cart=12", None),  # the route is a GET
        ("GET", "/p/shoe-2/buy", "", RouteMatch("add", "GET", "shoe", "2")),
        ("POST", "/", "wc-ajax=add_to_cart", RouteMatch("add", "POST")),
        ("POST", "/", "wc-ajax=get_refreshed_fragments", None),
        ("GET", "/cart/", "remove_item=abc123", RouteMatch("remove", "GET", "abc123")),
        ("POST", "/cart/9/qty/0", "", RouteMatch("change", "POST", "9", "0")),
        ("GET", "/", "&".join(["a=1"] * 60) + "&add-to-cart=1", None),  # too many fields: not read
    ],
)
def test_match_route(method: str, path: str, query: str, match: RouteMatch | None) -> None:
    assert match_route(ROUTES, method, path, query) == match


@pytest.mark.parametrize(
    ("table", "field", "message"),
    [
        ({"add": "GET /cart/add"}, "add", "a GET has no body"),
        ({"add": "GET /cart/add?id=*"}, "add", "a GET has no body"),
        ({"change": "GET /cart/change?id={item}"}, "change", "needs {quantity}"),
        ({"add": ["POST /cart/add", "/_nudge/beacon"]}, "add[1]", "nudge's own"),
        ({"add": "POST /_nudge"}, "add", "nudge's own"),
        ({"add": "/basket/add/{product}/"}, "add", "unknown placeholder {product}"),
        ({"add": "/basket/{item}/{item}"}, "add", "appears twice"),
        ({"add": "PUT /cart/add"}, "add", "method 'PUT'"),
        ({"add": "post /cart/add"}, "add", "method 'post'"),
        ({"add": "https://evil.example/cart/add"}, "add", "same-site path"),
        ({"add": "//evil.example/cart/add"}, "add", "same-site path"),
        ({"add": "cart/add"}, "add", "same-site path"),
        ({"add": "/cart/add#x"}, "add", "same-site path"),
        ({"add": "GET /?add-to-cart"}, "add", "write name=value"),
        ({"add": "GET /?add-to-cart=x{item}"}, "add", "whole value"),
        ({"add": 3}, "add", "expected str"),
        ({"add": []}, "add", "expected 1..20 entries"),
        ({"add": ""}, "add", "expected 1..300 characters"),
        ({}, "add", "at least one of add, remove, change"),
        ({"truth_url": "/cart.js"}, "add", "at least one of"),
        ({"add": "/a", "remove": "POST /a"}, "remove", "also under add"),
        ({"add": "/a", "item_field": "form-{n}-id"}, "quantity_field", "formset"),
        ({"add": "/a", "item_field": "id;drop"}, "item_field", "field name"),
        ({"add": "/a", "truth_items": "count"}, "truth_items", "needs truth_url"),
        ({"add": "/a", "truth_url": "https://shop.example/cart.js"}, "truth_url", "same-site"),
        ({"add": "/a", "truth_url": "/_nudge/explain"}, "truth_url", "same-site"),
        ({"add": "/a", "truth_url": "/cart.js", "truth_value_scale": 0}, "truth_value_scale", "above 0"),
        ({"add": "/a", "adds": "/b"}, "adds", "unknown field"),
    ],
)
def test_a_route_that_can_never_match_is_an_error(table: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(CartConfigError) as err:
        parse_cart_config(table)
    assert err.value.field == field and message in err.value.message


def test_rules_check_names_file_field_and_line() -> None:
    site = ('[shop]\ncurrency = "EUR"\n\n[cart]\nadd = [\n  "POST /basket/add/{item}/",\n]\n'
            'remove = "GET /basket/remove"\n')
    with pytest.raises(RuleError) as err:
        load_ruleset(repo_rule_files() | {"site.toml": site})
    assert str(err.value).startswith("site.toml:8: cart.remove: a GET has no body")


def test_old_site_syntax_still_loads() -> None:
    site = '[cart]\nadd = "/cart/add"\nitem_field = "sku"\nquantity_field = "qty"\n'
    cart = load_ruleset(repo_rule_files() | {"site.toml": site}).cart
    assert cart is not None and match_route(cart, "POST", "/cart/add", "") == RouteMatch("add", "POST")


def add(body: bytes, ctype: str | None) -> list[CartChange]:
    assert CART is not None
    return cart_changes(CART, RouteMatch("add", "POST"), body, ctype)


@pytest.mark.parametrize(
    ("body", "ctype", "changes"),
    [
        (b"sku=SNK-001&qty=2", FORM, [CartChange("add", "SNK-001", 2)]),
        (b"sku=SNK-001", FORM, [CartChange("add", "SNK-001", 1)]),
        (b"sku=SNK-001&qty=", FORM, [CartChange("add", "SNK-001", 1)]),
        (json.dumps({"sku": "SNK-002", "qty": 3}).encode(), "application/json; charset=utf-8",
         [CartChange("add", "SNK-002", 3)]),
        (json.dumps({"sku": 42, "qty": True}).encode(), "application/json", []),
        (b"sku=SNK-001&qty=0", FORM, []),
        (b"sku=SNK-001&qty=1000", FORM, []),
        (b"sku=SNK-001&qty=lots", FORM, []),
        (b"sku=%3Cscript%3E&qty=1", FORM, []),
        (b"qty=1", FORM, []),
        (b"[1,2]", "application/json", []),
        (b"{", "application/json", []),
        (b'--b\r\nContent-Disposition: form-data; name="sku"\r\n\r\nA\r\n--b--\r\n', "multipart/form-data; boundary=b",
         [CartChange("add", "A", 1)]),
        (b'--"b"\r\nContent-Disposition: form-data; name="sku"; filename="a.txt"\r\n\r\nA\r\n--b--\r\n',
         "multipart/form-data; boundary=b", []),  # a file is not a field
        (b"sku=A&qty=1", "multipart/form-data", []),  # no boundary
        (b"sku=A&qty=1", "text/plain", []),
        (b"\xff\xfe", FORM, []),
        (b"sku=A&qty=1" + b"&x=1" * 5000, FORM, []),  # larger than MAX_CART_BODY
    ],
)
def test_cart_bodies(body: bytes, ctype: str, changes: list[CartChange]) -> None:
    assert add(body, ctype) == changes


def test_the_url_item_takes_the_body_quantity() -> None:
    match = match_route(ROUTES, "POST", "/basket/add/5/", "")
    assert match is not None
    assert cart_changes(ROUTES, match, b"csrfmiddlewaretoken=t&quantity=4", FORM) == [CartChange("add", "5", 4)]
    assert cart_changes(ROUTES, match, b"", None) == [CartChange("add", "5", 1)]
    assert cart_changes(ROUTES, RouteMatch("add", "GET", "5"), b"quantity=9", FORM) == [CartChange("add", "5", 1)]


def test_cart_value_follows_known_prices() -> None:
    s = session()
    apply_cart_change(s, CartChange("add", "a", 2), NOW, 19.99)
    apply_cart_change(s, CartChange("add", "b", 1), NOW)  # price unknown: items count, value does not
    assert s.cart_items == 3 and s.cart_value == 3998
    apply_cart_change(s, CartChange("remove", "a", 1), NOW, 19.99)
    assert s.cart_value == 1999
    apply_cart_change(s, CartChange("change", "a", 4), NOW, 19.99)
    assert s.cart == {"a": 4, "b": 1} and s.cart_value == 4 * 1999
    apply_cart_change(s, CartChange("change", "a", 0), NOW, 19.99)
    assert s.cart == {"b": 1} and s.cart_value == 0


def test_apply_cart_change() -> None:
    s = session()
    apply_cart_change(s, CartChange("add", "a", 2), NOW)
    apply_cart_change(s, CartChange("add", "a", 1), NOW)
    assert s.cart == {"a": 3} and s.cart_changed == NOW and s.edge_cart_seen
    s.cart_value = 5000
    apply_cart_change(s, CartChange("remove", "a", 3), NOW + 5)
    assert s.cart == {} and s.cart_value == 0 and s.cart_changed == NOW + 5
    apply_cart_change(s, CartChange("remove", "zzz", 1), NOW + 6)
    apply_cart_change(s, CartChange("change", "zzz", 0), NOW + 6)
    assert s.cart == {}


def test_cart_lines_are_bounded() -> None:
    s = session()
    for i in range(25):
        apply_cart_change(s, CartChange("add", f"i{i}", 1), NOW)
    apply_cart_change(s, CartChange("change", "new", 3), NOW)
    assert len(s.cart) == 20 and "new" not in s.cart


def cart_event(kind: str) -> Beacon:
    return Beacon(None, None, (Event(kind, items=(Item("SNK-1", 1),), value=100.0),))


def test_client_cart_events_count_until_the_edge_sees_the_cart() -> None:
    """A [cart] route that never matches must not leave nudge blind: the browser's events count;
    once the edge has seen a change this visit, they stop counting (the edge has the cart)."""
    s = session()
    assert [e.type for e in apply_beacon(s, cart_event("add_to_cart"), NOW)] == ["add_to_cart"]
    assert s.cart == {"SNK-1": 1} and s.cart_value == 10000
    apply_cart_change(s, CartChange("add", "SNK-2", 1), NOW)
    assert apply_beacon(s, cart_event("add_to_cart"), NOW) == []
    assert apply_beacon(s, cart_event("remove_from_cart"), NOW) == []
    assert s.cart == {"SNK-1": 1, "SNK-2": 1}
