"""Visits built through nudge's own tracking functions, for the core tests (tests/core/factories.py
hands them on) and the benchmarks (cookie size, decision time): a typical visit and the worst case
for the cookie."""

from __future__ import annotations

import random
from pathlib import Path

from nudge.visitor.beacon import Beacon, Event, Item
from nudge.visitor.pages import Page
from nudge.visitor.session import Session
from nudge.visitor.tracking import apply_beacon, credit_dwell, record_page_view, record_served

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_790_000_000  # a fixed clock; everything time-based takes `now` as an argument


def repo_rule_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "rules").glob("*.toml"))}


def session(now: int = NOW) -> Session:
    return Session.fresh(now, visitor=b"visitor1")


def typical_visit() -> Session:
    """20 pages: home, 3 categories, 9 products (some twice), a search, cart, with dwell."""
    s = session()
    paths = [Page("home"), Page("category", "sneakers")]
    paths += [Page("product", "sneakers", p) for p in ("aero-runner", "court-classic", "trail-sprint", "cloud-knit")]
    paths += [Page("category", "boots")] + [Page("product", "boots", p) for p in ("chelsea-boot", "hiker-mid")]
    paths += [Page("search"), Page("product", "sneakers", "aero-runner"), Page("category", "accessories")]
    paths += [Page("product", "accessories", p) for p in ("merino-crew-socks", "suede-care-kit", "waxed-laces")]
    paths += [Page("cart"), Page("home"), Page("category", "sneakers"), Page("product", "sneakers", "retro-high"),
              Page("cart")]
    for i, page in enumerate(paths):
        pv = record_page_view(s, page, NOW + 30 * i, "q=trail running shoes" if page.type == "search" else "",
                              "https://www.google.com/search", "shop.example")
        credit_dwell(s, pv, 25, NOW + 30 * i + 25)
    apply_beacon(s, Beacon(None, None, (Event("add_to_cart", (Item("SNK-001", 1),), 129.0),)), NOW + 600)
    record_served(s, "sneakers-exit-intent", revealed=False)
    apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule="sneakers-exit-intent"),)), NOW + 610)
    return s


def heavy_history(rng: random.Random, views: int = 10_000) -> Session:
    """One endless visit (the worst case for the cookie): `views` page views across 200 categories
    and 5,000 products, with dwell, searches, UTM-tagged referrals, cart churn and 40 rules' nudges."""
    s = session()
    now = NOW
    for i in range(views):
        now += rng.randint(5, 120)
        cat = f"category-{rng.randrange(200):03d}"
        kind = rng.choice(["product", "product", "category", "search", "home"])
        product = f"product-name-{rng.randrange(5000):04d}"
        page = Page(kind, cat if kind in ("product", "category") else None, product if kind == "product" else None)
        query = f"q=term {rng.randrange(999)}&utm_source=src{i}"
        pv = record_page_view(s, page, now, query, "https://ref.example/", "shop")
        credit_dwell(s, pv, rng.randint(0, 600), now)
        if i % 7 == 0:
            item = Item(f"SKU-{rng.randrange(5000):05d}", rng.randint(1, 3))
            kind = rng.choice(["add_to_cart", "add_to_cart", "remove_from_cart"])
            apply_beacon(s, Beacon(None, None, (Event(kind, (item,), 49.5),)), now)
        if i % 11 == 0:
            rule = f"rule-{rng.randrange(40)}"
            record_served(s, rule, revealed=False)
            apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule=rule),)), now)
    return s
