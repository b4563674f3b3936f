"""A minimal origin for bench/peers: shop-like category pages of about ?kb=N KB (default 20) on any
path, served from memory with Content-Length, a new page per size built once.

    python bench/peers/origin.py --port 8790

Stand-in until tools/nudge_tools/origin.py (branch `speed`) lands: same command line (`--port`,
`--sized` accepted) and the same ready line ("origin on http://..."), so run.py can switch to
`python -m nudge_tools.origin --sized` by changing ORIGIN_COMMAND alone.
"""

from __future__ import annotations

import argparse
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sneakers · Shop</title>'
    '<link rel="stylesheet" href="/static/shop.css"></head>'
    '<body><header class="site-header"><a class="brand" href="/">Shop</a>'
    '<a class="cart-link" href="/cart">Cart</a></header><main id="main"><h1>Sneakers</h1><ul class="grid">\n'
)
TILE = (
    '<li class="tile"><a href="/collections/sneakers/products/runner-{i:04d}">'
    '<img src="/static/product.png" alt="" width="240" height="240" loading="lazy">'
    '<h3 class="tile__name">Runner {i:04d}</h3></a>'
    '<p class="tile__blurb">Breathable knit upper, cushioned midsole and a grippy outsole.</p>'
    '<p class="price"><span class="price__now" data-nudge-price="{price}.00" '
    'data-nudge-category="sneakers">${price}.00</span></p>'
    '<form method="post" action="/cart/add"><input type="hidden" name="sku" value="SNK-{i:04d}">'
    '<button type="submit">Add to cart</button></form></li>\n'
)
FOOT = (
    '</ul><div class="section" data-nudge-slot="recommendations"></div></main>'
    '<footer class="site-footer"><p>The benchmark shop.</p></footer></body></html>\n'
)


@lru_cache(maxsize=16)
def page(kb: int) -> bytes:
    """A category page of about `kb` KB: header, as many product tiles as fit, a slot, footer."""
    tiles, size, i = [], len(HEAD) + len(FOOT), 0
    while size < kb * 1024:
        tiles.append(TILE.format(i=i, price=49 + i % 150))
        size += len(tiles[-1])
        i += 1
    return (HEAD + "".join(tiles) + FOOT).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in two writes: no delayed-ACK stall

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        kb = int((parse_qs(urlsplit(self.path).query).get("kb") or ["20"])[0])
        body = page(max(1, min(kb, 4096)))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--port", type=int, default=8790)
    ap.add_argument("--sized", action="store_true", help="accepted for nudge_tools.origin's command line")
    args = ap.parse_args()
    server = _Server(("127.0.0.1", args.port), _Handler)
    print(f"origin on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
