"""Fuzzing the URL side: the page classifier over any path and any pattern, and the same-site
check every redirect and rendered link relies on (what it accepts never leaves the shop, however
a browser resolves it)."""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

from hypothesis import strategies as st

from nudge.rules.load import load_ruleset
from nudge.visitor.pages import PAGE_TYPES, PageClassifier, PatternError, same_site_path

from ..core.factories import repo_rule_files
from .profile import fuzz
from .strategies import PATHS, SEGMENT, TEXT

CLASSIFIER = load_ruleset(repo_rule_files()).classifier


@fuzz(PATHS)
def test_classifier(path: str) -> None:
    page = CLASSIFIER.classify(path)
    assert page.type in PAGE_TYPES
    for value in (page.category, page.product):
        assert value is None or 0 < len(value) <= 48 and value == value.lower()


@fuzz(SEGMENT, SEGMENT)
def test_classifier_round_trip(category: str, product: str) -> None:
    """A category and product put into a URL (percent-encoded) come back out of it."""
    def expected(segment: str) -> str | None:
        return segment.strip().lower()[:48] or None

    page = CLASSIFIER.classify(f"/collections/{quote(category, safe='')}/products/{quote(product, safe='')}")
    assert (page.type, page.category, page.product) == ("product", expected(category), expected(product))
    page = CLASSIFIER.classify(f"/collections/{quote(category, safe='')}/")
    assert (page.type, page.category, page.product) == ("category", expected(category), None)


PATTERN_PARTS = st.sampled_from(["/", "{category}", "{product}", "{other}", "*", "(", "[", "\\", "?", "{", "}", "x"])


@fuzz(st.lists(st.tuples(st.sampled_from([*PAGE_TYPES, "bogus"]),
                         TEXT | st.lists(PATTERN_PARTS, max_size=8).map("".join)),
               min_size=1, max_size=4), PATHS)
def test_page_patterns(patterns: list[tuple[str, str]], path: str) -> None:
    try:
        classifier = PageClassifier(patterns)
    except PatternError as exc:
        assert str(exc)
        return
    assert classifier.classify(path).type in PAGE_TYPES


BASE = "https://shop.example/collections/sneakers"
TRICKS = st.sampled_from(["/", "//", "\\", "/\\", "\\/", "evil.example", "@", ":", "%2F", "%5C", "%2f%2f", ".", "..",
                          "\t", "\n", "\r", " ", "\x00", "\x0b", "\u3000", "https:", "javascript:", "?", "#", "%09",
                          "\ufeff", "\u2028", "\xa0"])


def browser_resolves(url: str) -> str:
    """Where a browser's URL parser takes a link or Location: it drops tabs and newlines, trims C0
    controls and spaces, and reads a backslash as a slash in http(s) URLs."""
    cleaned = "".join(c for c in url if c not in "\t\n\r").strip("".join(map(chr, range(0x21))))
    return urljoin(BASE, cleaned.replace("\\", "/"))


@fuzz(st.lists(TRICKS | TEXT, max_size=6).map("".join))
def test_same_site_paths_never_leave_the_shop(value: str) -> None:
    if same_site_path(value):
        target = urlsplit(browser_resolves(value))
        assert (target.scheme, target.netloc) == ("https", "shop.example"), value
