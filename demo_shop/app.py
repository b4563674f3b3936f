"""The demo shop: the origin nudge's Worker proxies in `make dev` and the e2e tests.

All links and redirects are root-relative (no host in them) so pages work unchanged
behind the edge at :8787 and directly at :8788.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from demo_shop.analytics import ecommerce_event, ga4_item
from demo_shop.cart import (
    COOKIE,
    COOKIE_MAX_AGE,
    MAX_QTY,
    Cart,
    Line,
    add_item,
    cart_json,
    parse_cart,
    price_line,
    remove_item,
    serialize_cart,
    summarize,
)
from demo_shop.catalog import CATALOG, CURRENCY, Product
from demo_shop.offer import HEADER as OFFER_HEADER
from demo_shop.offer import Offer, parse_offer
from demo_shop.orders import OrderBook
from demo_shop.webhooks import Inbox, listing, receive

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
MAX_BODY = 16 * 1024
# HTML differs per visitor (cart cookie, offer header): never let a cache share it.
PAGE_HEADERS = {"Cache-Control": "no-store"}
# Switches for testing nudge against other kinds of shops (the e2e tests set them):
# DEMO_SHOP_CSP=strict sends a nonce-based strict Content-Security-Policy;
# DEMO_SHOP_IGNORE_OFFER=1 ignores X-Nudge-Offer, like a shop with no nudge integration;
# DEMO_SHOP_OFFER=cart applies X-Nudge-Offer in the cart and checkout only: product and collection
# pages show list prices (and no X-Nudge-Offer-Applied), like a shop whose middleware prices the cart.
OFFER_APPLIED = "X-Nudge-Offer-Applied"
# The signed-in customer (demo: any id, no password), named to nudge on every page so the Worker can
# link the visitor to the customer (and follow up after the visit).
USER_COOKIE = "demo_user"
USER_HEADER = "X-Nudge-User"
ORDER_HEADER = "X-Nudge-Order"
_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def strict_csp(nonce: str) -> str:
    return (f"default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'; "
            f"style-src 'self' 'nonce-{nonce}'; img-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")


def usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["usd"] = usd
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}  # keep "event" first in dataLayer pushes
    env.globals["ga4_item"] = ga4_item
    return Jinja2Templates(env=env, context_processors=[_chrome])


def current_offer(request: Request) -> Offer | None:
    if os.environ.get("DEMO_SHOP_IGNORE_OFFER") == "1":
        return None
    return parse_offer(request.headers.get(OFFER_HEADER), now=time.time(), categories=CATALOG.categories)


def listing_offer(request: Request) -> Offer | None:
    """The offer product and collection pages are priced with (none when only the cart applies it)."""
    return None if os.environ.get("DEMO_SHOP_OFFER") == "cart" else current_offer(request)


def current_user(request: Request) -> str | None:
    user = request.cookies.get(USER_COOKIE, "")
    return user if _USER.fullmatch(user) else None


def current_cart(request: Request) -> Cart:
    return parse_cart(request.cookies.get(COOKIE), CATALOG.products)


def _chrome(request: Request) -> dict[str, Any]:
    """What every page's header needs: category nav and the cart count."""
    return {
        "categories": list(CATALOG.categories.values()),
        "cart_count": sum(current_cart(request).values()),
    }


templates = _templates()


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    events: Iterable[dict[str, Any]] = (),
    shown: Iterable[Line] = (),
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a page; `events` become its initial dataLayer pushes, `shown` decides the offer note."""
    offer = current_offer(request)
    note = offer.note if offer is not None and any(line.discounted for line in shown) else None
    nonce = secrets.token_urlsafe(16) if os.environ.get("DEMO_SHOP_CSP") == "strict" else None
    context = {"datalayer": list(events), "offer_note": note, "csp_nonce": nonce, **context}
    extra = {"Content-Security-Policy": strict_csp(nonce)} if nonce else {}
    if offer is not None and (listing_offer(request) is not None or any(line.discounted for line in shown)):
        extra[OFFER_APPLIED] = "1"  # prices on this page already carry the offer: nudge leaves them alone
    user = current_user(request)
    if user:
        extra[USER_HEADER] = user
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers={**PAGE_HEADERS, **extra, **(headers or {})}
    )


def priced(products: Iterable[Product], offer: Offer | None) -> list[Line]:
    return [price_line(product, 1, offer) for product in products]


async def home(request: Request) -> Response:
    lines = priced(CATALOG.featured(), listing_offer(request))
    return render(request, "home.html", {"featured": lines}, shown=lines)


async def category_page(request: Request) -> Response:
    category = CATALOG.categories.get(request.path_params["category"])
    if category is None:
        raise HTTPException(404)
    lines = priced(CATALOG.in_category(category.slug), listing_offer(request))
    event = ecommerce_event(
        "view_item_list", lines, indexed=True, item_list_id=category.slug, item_list_name=category.name
    )
    return render(request, "category.html", {"category": category, "lines": lines}, events=[event], shown=lines)


async def product_page(request: Request) -> Response:
    product = CATALOG.find(request.path_params["category"], request.path_params["slug"])
    if product is None:
        raise HTTPException(404)
    offer = listing_offer(request)
    line = price_line(product, 1, offer)
    related = priced(CATALOG.related(product), offer)
    context = {
        "category": CATALOG.categories[product.category],
        "product": product,
        "line": line,
        "related": related,
        "jsonld": product_jsonld(product),
        "max_qty": MAX_QTY,
    }
    event = ecommerce_event("view_item", [line])
    return render(request, "product.html", context, events=[event], shown=[line, *related])


def product_jsonld(product: Product) -> dict[str, Any]:
    """schema.org Product at list price (what crawlers, who never carry an offer, would pay)."""
    return {
        "@context": "https://schema.org",
        "@type": "Product",
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "brand": {"@type": "Brand", "name": product.brand},
        "category": product.category,
        "offers": {
            "@type": "Offer",
            "price": str(product.price),
            "priceCurrency": CURRENCY,
            "availability": "https://schema.org/InStock",
        },
    }


async def cart_page(request: Request) -> Response:
    summary = summarize(current_cart(request), CATALOG, current_offer(request))
    return render(request, "cart.html", {"summary": summary}, shown=summary.lines)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


async def read_fields(request: Request) -> dict[str, str]:
    """Form fields from a urlencoded (HTML form, URLSearchParams) or JSON body.

    Starlette's own form parser needs python-multipart, which the shop does not depend on.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, "Malformed JSON body") from exc
        if not isinstance(data, dict):
            raise HTTPException(400, "Expected a JSON object")
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int) and not isinstance(v, bool)}
    if content_type in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, "Malformed form body") from exc
        fields: dict[str, str] = {}
        for key, value in pairs:
            fields.setdefault(key, value)
        return fields
    raise HTTPException(415, "Send application/x-www-form-urlencoded or application/json")


def parse_qty(raw: str | None) -> int | None:
    """A quantity 1..MAX_QTY, None when absent or blank; ValueError otherwise."""
    if raw is None or not raw.strip():
        return None
    qty = int(raw.strip())
    if not 1 <= qty <= MAX_QTY:
        raise ValueError(f"qty must be between 1 and {MAX_QTY}")
    return qty


def back_url(request: Request) -> str:
    """The referring page's path (never its host: no open redirect, works behind the edge)."""
    parts = urlsplit(request.headers.get("referer", ""))
    path = parts.path
    if not path.startswith("/") or path[1:2] in ("/", "\\") or path.startswith("/cart/"):
        return "/cart"
    return f"{path}?{parts.query}" if parts.query else path


def bad_request(request: Request, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=400)
    raise HTTPException(400, message)


def cart_changed(request: Request, cart: Cart) -> Response:
    """Answer a cart mutation: JSON for fetch, 303 back for plain forms; persist the cookie."""
    response: Response
    if wants_json(request):
        response = JSONResponse(cart_json(summarize(cart, CATALOG, current_offer(request))))
    else:
        response = RedirectResponse(back_url(request), status_code=303)
    if cart:
        response.set_cookie(COOKIE, serialize_cart(cart), max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax")
    else:
        response.delete_cookie(COOKIE, httponly=True, samesite="lax")
    return response


async def cart_add(request: Request) -> Response:
    fields = await read_fields(request)
    sku = fields.get("sku", "")
    if CATALOG.get(sku) is None:
        return bad_request(request, f"Unknown sku {sku!r}")
    try:
        qty = parse_qty(fields.get("qty"))
    except ValueError:
        return bad_request(request, f"qty must be a whole number from 1 to {MAX_QTY}")
    return cart_changed(request, add_item(current_cart(request), sku, qty or 1))


async def cart_remove(request: Request) -> Response:
    fields = await read_fields(request)
    try:
        qty = parse_qty(fields.get("qty"))
    except ValueError:
        return bad_request(request, f"qty must be a whole number from 1 to {MAX_QTY}")
    return cart_changed(request, remove_item(current_cart(request), fields.get("sku", ""), qty))


async def checkout_page(request: Request) -> Response:
    summary = summarize(current_cart(request), CATALOG, current_offer(request))
    if not summary.lines:
        return RedirectResponse("/cart", status_code=303)
    event = ecommerce_event("begin_checkout", summary.lines, coupon=summary.coupon)
    return render(request, "checkout.html", {"summary": summary}, events=[event], shown=summary.lines)


async def place_order(request: Request) -> Response:
    summary = summarize(current_cart(request), CATALOG, current_offer(request))
    if not summary.lines:
        return RedirectResponse("/cart", status_code=303)
    orders: OrderBook = request.app.state.orders
    order = orders.place(summary)
    response = RedirectResponse(f"/checkout/thank-you?order={order.id}", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="lax")
    return response


async def thank_you(request: Request) -> Response:
    orders: OrderBook = request.app.state.orders
    order = orders.get(request.query_params.get("order", ""))
    if order is None:
        raise HTTPException(404)
    event = ecommerce_event(
        "purchase", order.lines, transaction_id=order.id, coupon=order.coupon, tax=0.0, shipping=0.0
    )
    # The order, as nudge counts it (orders, revenue, conversions): said by the shop's server, never
    # by the browser's purchase event; the edge strips the header before the browser sees it.
    return render(request, "thank_you.html", {"order": order}, events=[event],
                  headers={ORDER_HEADER: f"id={order.id}; value={order.total:.2f}"})


async def account_page(request: Request) -> Response:
    return render(request, "account.html", {"user": current_user(request)})


async def login(request: Request) -> Response:
    fields = await read_fields(request)
    user = fields.get("user", "").strip()
    if not _USER.fullmatch(user):
        return bad_request(request, "a customer id is 1 to 64 letters, digits, '.', '_', '@' or '-'")
    response = RedirectResponse("/account", status_code=303)
    response.set_cookie(USER_COOKIE, user, max_age=30 * 86_400, httponly=True, samesite="lax")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/account", status_code=303)
    response.delete_cookie(USER_COOKIE, httponly=True, samesite="lax")
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    """Shop-styled error pages (404 for unknown categories/products/orders, 400 for bad forms)."""
    assert isinstance(exc, HTTPException)
    template = "not_found.html" if exc.status_code == 404 else "error.html"
    return render(
        request,
        template,
        {"status_code": exc.status_code, "detail": exc.detail},
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


def create_app() -> Starlette:
    """A fresh app (own order book), so tests do not share state."""
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/collections/{category}", category_page),
            Route("/collections/{category}/products/{slug}", product_page),
            Route("/cart", cart_page),
            Route("/cart/add", cart_add, methods=["POST"]),
            Route("/cart/remove", cart_remove, methods=["POST"]),
            Route("/checkout", checkout_page, methods=["GET"]),
            Route("/checkout", place_order, methods=["POST"]),
            Route("/checkout/thank-you", thank_you),
            Route("/account", account_page),
            Route("/account/login", login, methods=["POST"]),
            Route("/account/logout", logout, methods=["POST"]),
            Route("/webhooks/nudge", receive, methods=["POST"]),
            Route("/webhooks", listing),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: http_error},
        max_body_size=MAX_BODY,
    )
    # Starlette's trailing-slash redirect has an absolute Location built from the Host header,
    # which would send visitors around the edge; keep every Location root-relative instead.
    app.router.redirect_slashes = False
    app.state.orders = OrderBook()
    app.state.inbox = Inbox()
    return app


app = create_app()
