"""Session cookie size: a typical 20-page visit, and 10,000 page views across 200 categories and
5,000 products with dwell, searches, cart churn and nudges (hard cap: 1,024 bytes).

    .venv/bin/python bench/cookie_size.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from nudge.beacon import Beacon, Event, Item  # noqa: E402
from nudge.pages import Page  # noqa: E402
from nudge.session import MAX_COOKIE_BYTES, Session, SessionCodec  # noqa: E402
from nudge.signing import Signer  # noqa: E402
from nudge.tracking import apply_beacon, credit_dwell, record_page_view  # noqa: E402
from tests.core.factories import typical_visit  # noqa: E402

NOW = 1_790_000_000


def heavy_history(rng: random.Random) -> Session:
    s = Session.fresh(NOW)
    now = NOW
    for i in range(10_000):
        now += rng.randint(5, 120)  # one endless visit: the worst case for the cookie
        cat = f"category-{rng.randrange(200):03d}"
        kind = rng.choice(["product", "product", "category", "search", "home"])
        product = f"product-name-{rng.randrange(5000):04d}"
        page = Page(kind, cat if kind in ("product", "category") else None, product if kind == "product" else None)
        pv = record_page_view(s, page, now, f"q=term {rng.randrange(999)}&utm_source=src{i}", "https://ref.example/", "shop")
        credit_dwell(s, pv, rng.randint(0, 600), now)
        if i % 7 == 0:
            item = Item(f"SKU-{rng.randrange(5000):05d}", rng.randint(1, 3))
            kind = rng.choice(["add_to_cart", "add_to_cart", "remove_from_cart"])
            apply_beacon(s, Beacon(None, None, (Event(kind, (item,), 49.5),)), now)
        if i % 11 == 0:
            apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule=f"rule-{rng.randrange(40)}"),)), now)
    return s


def main() -> int:
    codec = SessionCodec(Signer([b"bench-secret"], "session"))
    typical = codec.encode(typical_visit())
    heavy = heavy_history(random.Random(7))
    start = time.perf_counter()
    value = codec.encode(heavy)
    encode_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for _ in range(1000):
        codec.decode(value)
    decode_us = (time.perf_counter() - start) * 1000
    print(f"typical 20-page visit: {len(typical)} bytes (target <= 400)")
    print(f"10,000 page views, 200 categories, 5,000 products: {len(value)} bytes (cap {MAX_COOKIE_BYTES})")
    print(f"encode of the heavy session (CPython, incl. shedding): {encode_ms:.2f} ms; decode: {decode_us:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
