"""Small factories shared by the core tests."""

from __future__ import annotations

from pathlib import Path

from nudge.app import EdgeApp
from nudge.rules import RuleSet, load_ruleset
from nudge.beacon import Beacon, Event, Item
from nudge.pages import Page
from nudge.session import Session
from nudge.tracking import apply_beacon, credit_dwell, record_page_view

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_790_000_000  # a fixed clock; everything time-based takes `now` as an argument
SECRET = [b"test-secret"]


def repo_rule_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "rules").glob("*.toml"))}


def repo_ruleset() -> RuleSet:
    return load_ruleset(repo_rule_files())


def make_app(files: dict[str, str] | None = None) -> EdgeApp:
    return EdgeApp(load_ruleset(files or repo_rule_files()), SECRET, "/* client */")


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
    paths += [Page("cart"), Page("home"), Page("category", "sneakers"), Page("product", "sneakers", "retro-high"), Page("cart")]
    for i, page in enumerate(paths):
        pv = record_page_view(s, page, NOW + 30 * i, "q=trail running shoes" if page.type == "search" else "",
                              "https://www.google.com/search", "shop.example")
        credit_dwell(s, pv, 25, NOW + 30 * i + 25)
    apply_beacon(s, Beacon(None, None, (Event("add_to_cart", (Item("SNK-001", 1),), 129.0),)), NOW + 600)
    apply_beacon(s, Beacon(None, None, (Event("nudge_shown", rule="sneakers-exit-intent"),)), NOW + 610)
    return s
