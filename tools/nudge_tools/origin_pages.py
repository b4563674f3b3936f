"""The bodies the test origin (nudge_tools/origin.py) serves: small shop pages for the runtime
tests, awkward and faulty ones for the fault tests, and shop pages of a chosen size for the
benchmarks."""

from __future__ import annotations

import gzip
import json
import subprocess
from functools import cache, lru_cache

HTML = "text/html; charset=utf-8"

PAGE = (
    "<!doctype html><html><head><title>t</title></head>"
    "<body><h1>Hello</h1><p>origin page</p></body></html>"
)
ASSET = bytes(range(256)) * 64  # 16 KiB of every byte value
PRODUCT_PAGE = (
    "<!doctype html><html><head><title>Trail Shoe</title>"
    '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product", '
    '"sku": "TS-1", "name": "Trail Shoe", "category": "Shoes > Sneakers", "brand": {"@type": "Brand", '
    '"name": "Summit"}, "offers": {"@type": "Offer", "price": "149.00", "priceCurrency": "USD"}}</script>'
    "</head><body><h1>Trail Shoe</h1></body></html>"
)

# A shop page with what nudge can act on: slots (one no rule targets), marked prices, microdata.
SHOP_PAGE = (
    "<!doctype html><html><head><title>Shop</title></head><body>"
    '<div data-nudge-slot="recommendations"><p>site fallback</p></div>'
    '<div data-nudge-slot="nobody-targets-this"><p>site content stays</p></div>'
    '<p class="price" data-nudge-price="129.00">$129.00</p>'
    '<span itemprop="price" content="89.00">$89.00</span>'
    '<meta itemprop="price" content="89.00">'
    '<span data-nudge-price="call us">call us</span>'
    '<span data-nudge-price="24.00" data-nudge-category="accessories">$24.00</span>'
    "</body></html>"
)

# A shop page whose prices carry no nudge markup, as WooCommerce and Shopify's Dawn theme write
# them (rules/site.toml `[site] prices` names them), with what must stay as it is around them.
WOO_AMOUNT = ('<span class="woocommerce-Price-amount amount"><bdi>'
              '<span class="woocommerce-Price-currencySymbol">&#36;</span>{}</bdi></span>')
PLAIN_PRICES_PAGE = (
    "<!doctype html><html><head><title>Plain prices</title></head><body>"
    f'<p class="woo-regular price">{WOO_AMOUNT.format("129.00")}</p>'
    f'<p class="woo-sale price"><del aria-hidden="true">{WOO_AMOUNT.format("150.00")}</del> '
    '<span class="screen-reader-text">Original price was: &#36;150.00.</span>'
    f'<ins aria-hidden="true">{WOO_AMOUNT.format("99.00")}</ins>'
    '<span class="screen-reader-text">Current price is: &#36;99.00.</span></p>'
    '<div class="dawn price"><div class="price__regular">'
    '<span class="visually-hidden">Regular price</span>'
    '<span class="price-item price-item--regular">\n  $1,299.00 USD\n</span></div>'
    '<div class="price__sale"><s class="price-item price-item--regular">$150.00</s>'
    '<span class="price-item price-item--sale">$89.00</span></div></div>'
    '<div class="price__regular"><span class="price-item price-item--regular">Sold out</span></div>'
    '<div class="price__regular"><span class="price-item price-item--regular" data-nudge-category="accessories">'
    "$24.00</span></div>"
    '<div class="price__regular"><span class="price-item price-item--regular" data-nudge-category="sneakers">'
    "$50.00</span></div>"
    '<div class="price__regular"><span class="price-item price-item--regular">'
    '<span data-nudge-price="49.00">$49.00</span></span></div>'
    '<span class="card-price" data-price="$24.00">$24.00</span>'
    "</body></html>"
)

# -- awkward pages, for the fault tests: name -> (body, Content-Type) served at /fault/page/<name>

PAGES: dict[str, tuple[bytes, str]] = {
    "no-head": (b"<!doctype html><html><body><h1>No head</h1></body></html>", HTML),
    "no-body": (b"<!doctype html><html><head><title>No body</title></head></html>", HTML),
    "fragment": (b"<p>no html, no head, no body</p>", HTML),
    "unclosed": (b"<!doctype html><html><head><title>Unclosed</title><body><div><p>never closed <b>bold", HTML),
    # </head>, </body> and </html> are optional in HTML: each left out on its own
    "no-head-end": (b"<!doctype html><html><head><title>t</title><body><p>x</p></body></html>", HTML),
    "no-body-end": (b"<!doctype html><html><head><title>t</title></head><body><p>x</p></html>", HTML),
    "no-end-tags": (b"<!doctype html><title>t</title><body><p>x", HTML),
    "body-in-script-and-comment": (
        b"<!doctype html><html><head><title>t</title>"
        b'<script>var early = "</body></html>";</script></head>'
        b"<body><h1>Real body</h1>"
        b"<script>document.write('</body>'); var s = \"</body>\";</script>"
        b"<!-- </body> a comment that looks like the end -->"
        b"<textarea></body></textarea>"
        b"<p>last paragraph</p></body></html>",
        HTML,
    ),
    "windows-1252": (
        b"<!doctype html><html><head><meta charset=\"windows-1252\"><title>Caf\xe9 \x80 prices</title></head>"
        b"<body><p>\x93Quoted\x94 na\xefve cr\xe8me br\xfbl\xe9e: 12\x80</p></body></html>",
        "text/html; charset=windows-1252",
    ),
    "shift_jis": (
        "<!doctype html><html><head><meta charset=\"Shift_JIS\"><title>靴の店</title></head>"
        "<body><p>スニーカー ¥12,000 表示</p></body></html>".encode("shift_jis"),
        "text/html; charset=Shift_JIS",
    ),
    # Charsets in which "<" is not the byte 0x3C: nothing can be inserted safely.
    "utf-16": (
        "<!doctype html><html><head><title>t</title></head><body><p>wide</p></body></html>".encode("utf-16"),
        "text/html; charset=UTF-16",
    ),
    "iso-2022-jp": (
        "<!doctype html><html><head><title>靴</title></head><body><p>スニーカー</p></body></html>".encode("iso2022_jp"),
        'text/html; charset="ISO-2022-JP"',
    ),
}

# Three cookies of the shop's own, one with the comma an Expires date carries.
OWN_COOKIES = (
    "shop_session=s1; Path=/; HttpOnly",
    "shop_cart=c2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    "shop_ab=variant-b; Path=/; Max-Age=3600; SameSite=Lax",
)

GZIP_PAGE = gzip.compress(PAGE.encode())
# gzip's header, then bytes no inflater accepts: a body labelled gzip that nobody can decode
CORRUPT_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff\xfe not deflate data \x00" * 40
UNKNOWN_ENCODED = b"\x1f\x9d\x90<html> not really compressed, but labelled so \x00\xff"


def big_page(megabytes: int) -> bytes:
    """A page of about `megabytes` MB: a head, many paragraphs, then the end of the body."""
    row = b"<p>" + b"filler text of a very long category page " * 3 + b"</p>\n"
    rows = megabytes * 1024 * 1024 // len(row)
    return b"<!doctype html><html><head><title>Big</title></head><body>\n" + row * rows + b"</body></html>"


def brotli(data: bytes) -> bytes:
    """Brotli-compressed `data`, by Node's zlib (Python's stdlib has no brotli)."""
    script = "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"
    return subprocess.run(["node", "-e", script], input=data, capture_output=True, check=True).stdout


def unbrotli(data: bytes) -> bytes:
    script = "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
    return subprocess.run(["node", "-e", script], input=data, capture_output=True, check=True).stdout


@cache
def brotli_page() -> bytes:
    """PAGE, brotli-compressed (made on first use: it takes a Node process)."""
    return brotli(PAGE.encode())


# -- shop pages of a chosen size, for the benchmarks -------------------------------------------------

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
def sized_page(kb: int, jsonld: bool = False, facts: str = "") -> tuple[bytes, bytes]:
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
    tiles, i, size = [], 0, 0
    target = kb * 1024 - len(head) - len(top) - len(bottom)
    while size < target:
        tile = TILE.format(i=i, price=49 + i % 150)
        tiles.append(tile)
        size += len(tile)
        i += 1
    return head.encode(), (top + "".join(tiles) + bottom).encode()
