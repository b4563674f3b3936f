"""The shop's cart at the edge on workerd: a `[cart]` route with a path placeholder, the shop's cart
JSON read after the change (`truth_url`), and the `X-Nudge-Cart` header. One edge for the module."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest

from nudge.signing import Signer
from nudge.visitor.session import CART_FROM_SHOP, UNNAMED_LINE, Session, SessionCodec
from nudge_tools.processes import REPO_ROOT, local_edge, serving
from nudge_tools.traffic import publish

pytestmark = pytest.mark.runtime
SECRET = "runtime-cart-secret"
CODEC = SessionCodec(Signer([SECRET.encode()], "session"))
QA_TOKEN = "cart-qa-token"
SITE = """
[cart]
add = "POST /basket/add/{item}/"
truth_url = "/cart.js"
truth_items = "item_count"
truth_value = "total_price"
truth_value_scale = 0.01

[shop]
currency = "GBP"
"""
PAGE = b"<!doctype html><html><head><title>Shop</title></head><body><p>shop</p></body></html>"


class _Shop(BaseHTTPRequestHandler):
    """Oscar-like adds (the product in the path, a basket cookie), Shopify-like `/cart.js`. Every
    new basket starts with one item the edge never saw (merged from the customer's account)."""

    protocol_version = "HTTP/1.1"
    baskets: dict[str, dict[str, int]]
    truth_reads: list[str]  # the Cookie header of each /cart.js read

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Content-Length"):
            return self.rfile.read(int(self.headers["Content-Length"]))
        data = b""
        while self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            size = int(self.rfile.readline().strip() or b"0", 16)
            chunk = self.rfile.read(size + 2)[:size]
            if not size:
                break
            data += chunk
        return data

    def _basket(self) -> str | None:
        cookies = dict(c.strip().partition("=")[::2] for c in (self.headers.get("Cookie") or "").split(";") if "=" in c)
        return cookies.get("basket")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        quantity = int((parse_qs(self._body().decode()).get("quantity") or ["1"])[0])
        item = self.path.strip("/").split("/")[-1]
        basket = self._basket() or f"b{len(self.baskets) + 1}"
        lines = self.baskets.setdefault(basket, {"from-account": 1})
        lines[item] = lines.get(item, 0) + quantity
        self._send(302, b"", "text/html", (("Location", "/basket/"), ("Set-Cookie", f"basket={basket}; Path=/")))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/cart.js":
            type(self).truth_reads.append(self.headers.get("Cookie") or "")
            lines = self.baskets.get(self._basket() or "", {})
            count = sum(lines.values())
            self._send(200, json.dumps({"item_count": count, "total_price": count * 12900, "items": []}).encode(),
                       "application/json")
        elif self.path == "/header-page":
            self._send(200, PAGE, "text/html; charset=utf-8", (("X-Nudge-Cart", "items=4; value=50.00"),))
        elif self.path == "/header-json":
            self._send(200, b"{}", "application/json", (("X-Nudge-Cart", "items=0"),))
        else:
            self._send(200, PAGE, "text/html; charset=utf-8")


@contextmanager
def shop() -> Iterator[tuple[str, type[_Shop]]]:
    handler = type("Shop", (_Shop,), {"baskets": {}, "truth_reads": []})
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url, handler


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, type[_Shop]]]:
    work = tmp_path_factory.mktemp("cart")
    rules_dir, kv_dir = work / "rules", work / "kv"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    (rules_dir / "site.toml").write_text(SITE)
    publish(rules_dir, kv_dir)  # served from the edge's first request
    with shop() as (origin, handler), \
            local_edge(origin, kv_dir, SECRET, "--var", f"NUDGE_EXPLAIN_TOKEN:{QA_TOKEN}") as (url, _):
        yield url, handler


def session_in(resp: httpx.Response) -> Session:
    value = next(c.split(";")[0].partition("=")[2] for c in resp.headers.get_list("set-cookie")
                 if c.startswith("nudge="))
    return CODEC.decode(value)


def test_a_placeholder_route_and_the_shops_cart_json(edge: tuple[str, type[_Shop]]) -> None:
    url, handler = edge
    with httpx.Client(base_url=url, timeout=30) as c:
        c.get("/")  # a visit with a session
        added = c.post("/basket/add/7/", data={"csrfmiddlewaretoken": "t", "quantity": "2"})
        assert added.status_code == 302 and added.headers["set-cookie"].startswith("basket=")
        s = session_in(added)
        # The edge saw "7 x2"; the shop's cart (read with the basket cookie the add just set) has
        # one more item the edge never saw: the shop's count wins, the rest is an unnamed line.
        assert s.cart == {"7": 2, UNNAMED_LINE: 1} and s.cart_value == 3 * 12900
        assert s.cart_source == CART_FROM_SHOP and s.edge_cart_seen
        basket = added.headers["set-cookie"].split(";")[0]
        assert handler.truth_reads and basket in handler.truth_reads[-1] and "nudge" not in handler.truth_reads[-1]
        explained = c.get("/_nudge/explain", params={"token": QA_TOKEN, "path": "/", "format": "json"}).json()
        assert explained["cart"]["source"].startswith("the shop itself") and explained["cart"]["items"] == 3


def test_the_shops_cart_header_wins_and_never_reaches_the_browser(edge: tuple[str, type[_Shop]]) -> None:
    url, _ = edge
    with httpx.Client(base_url=url, timeout=30) as c:
        c.get("/")
        page = c.get("/header-page")
        assert "x-nudge-cart" not in page.headers and "<p>shop</p>" in page.text
        s = session_in(page)
        assert s.cart_items == 4 and s.cart_value == 5000 and s.cart_source == CART_FROM_SHOP
        emptied = c.get("/header-json")  # not a page: the cookie still follows the shop's word
        assert "x-nudge-cart" not in emptied.headers
        assert session_in(emptied).cart == {}
