"""The origin the benchmarks (and the performance runtime tests) put behind the edge: shop-like
HTML of a chosen size, served fast, or slowly (the head, a pause, then the rest).

    .venv/bin/python -m bench.origin --port 8790

Routes (any path; the path only decides how nudge classifies the page):
  ?kb=N        a page of about N KB (default 20): header, product tiles with marked prices, a
               recommendations slot, footer
  ?jsonld=1    adds a schema.org Product script and og:/product: meta tags to the head
  ?facts=meta  adds the meta tags only, some spelled as CMSs do (" OG:Type ")
  ?pause=S     sends everything up to and including </head>, waits S seconds, then the rest
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.processes import serving as serving_in_thread

TILE = (
    '<li class="tile"><a href="/collections/sneakers/products/runner-{i:04d}">'
    '<img src="/static/product.png" alt="" width="240" height="240" loading="lazy">'
    '<h3 class="tile__name">Runner {i:04d}</h3></a>'
    '<p class="tile__blurb">Breathable knit upper, cushioned midsole and a grippy outsole for '
    'city miles and weekend trails alike.</p>'
    '<p class="price"><span class="price__now" data-nudge-price="{price}.00" '
    'data-nudge-category="sneakers">${price}.00</span></p>'
    '<form method="post" action="/cart/add"><input type="hidden" name="sku" value="SNK-{i:04d}">'
    '<button type="submit">Add to cart</button></form></li>\n'
)
JSON_LD = {
    "@context": "https://schema.org", "@type": "Product", "sku": "TS-1", "name": "Trail Shoe",
    "description": "A light trail shoe. " * 40, "category": "Shoes > Sneakers",
    "brand": {"@type": "Brand", "name": "Summit"},
    "offers": {"@type": "Offer", "price": "149.00", "priceCurrency": "USD",
               "availability": "https://schema.org/InStock"},
}
META = (
    '<meta property="og:type" content="product"><meta property="og:title" content="Trail Shoe">'
    '<meta property="og:description" content="A light trail shoe."><meta property="og:site_name" content="Shop">'
    '<meta property="og:image" content="/static/product.png"><meta property="product:brand" content="Summit">'
    '<meta property="product:category" content="Sneakers"><meta property="product:retailer_item_id" content="TS-1">'
    '<meta property="product:price:amount" content="149.00"><meta property="product:price:currency" content="USD">'
)


ODD_META = META.replace('property="og:type"', 'property=" OG:Type "').replace(
    'property="product:category"', 'property="Product:Category"')


@lru_cache(maxsize=64)
def page(kb: int, jsonld: bool = False, facts: str = "") -> tuple[bytes, bytes]:
    """(everything up to and including </head>, the rest) of a shop page of about `kb` KB."""
    head = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Sneakers · Shop</title>"
        '<meta name="description" content="Sneakers for every day.">'
        '<link rel="icon" href="/static/logo.svg"><link rel="stylesheet" href="/static/shop.css">'
        + (META + f'<script type="application/ld+json">{json.dumps(JSON_LD)}</script>' if jsonld else "")
        + (ODD_META if facts == "meta" else "")
        + "</head>"
    )
    top = (
        '<body><a class="skip-link" href="#main">Skip to content</a><header class="site-header">'
        '<a class="brand" href="/">Shop</a><nav aria-label="Categories"><ul>'
        '<li><a href="/collections/sneakers">Sneakers</a></li><li><a href="/collections/boots">Boots</a></li>'
        '<li><a href="/collections/accessories">Accessories</a></li></ul></nav>'
        '<a class="cart-link" href="/cart">Cart</a></header><main id="main"><h1>Sneakers</h1><ul class="grid">\n'
    )
    bottom = (
        '</ul><div class="section" data-nudge-slot="recommendations"></div></main>'
        '<footer class="site-footer"><p>The benchmark shop.</p></footer></body></html>\n'
    )
    tiles, i = [], 0
    target = kb * 1024 - len(head) - len(top) - len(bottom)
    size = 0
    while size < target:
        tile = TILE.format(i=i, price=49 + i % 150)
        tiles.append(tile)
        size += len(tile)
        i += 1
    return head.encode(), (top + "".join(tiles) + bottom).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        query = parse_qs(urlsplit(self.path).query)
        kb = int((query.get("kb") or ["20"])[0])
        head, rest = page(max(1, min(kb, 16 * 1024)), bool(query.get("jsonld")), (query.get("facts") or [""])[0])
        pause = float((query.get("pause") or ["0"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        if not pause:
            self.send_header("Content-Length", str(len(head) + len(rest)))
            self.end_headers()
            self.wfile.write(head + rest)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(head)
        time.sleep(pause)
        self._chunk(rest)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


@contextmanager
def serving() -> Iterator[str]:
    """The origin in a thread of this process (for tests); its base URL."""
    with serving_in_thread(_Server(("127.0.0.1", 0), _Handler)) as url:
        yield url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8790)
    args = ap.parse_args()
    server = _Server(("127.0.0.1", args.port), _Handler)
    print(f"bench origin on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
