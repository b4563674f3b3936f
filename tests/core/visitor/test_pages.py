from __future__ import annotations

import pytest

from nudge.visitor.pages import Page, PageClassifier, PatternError, same_site_path
from tests.core.factories import repo_ruleset

CLASSIFY = repo_ruleset().classifier.classify


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/", Page("home")),
        ("/collections/sneakers", Page("category", "sneakers")),
        ("/collections/sneakers/", Page("category", "sneakers")),
        ("/collections/Sneakers", Page("category", "sneakers")),  # case-folded
        ("/collections/sneakers/products/air-runner", Page("product", "sneakers", "air-runner")),
        ("/collections/sneak%20ers", Page("category", "sneak ers")),  # percent-decoded
        ("/cart", Page("cart")),
        ("/checkout", Page("checkout")),
        ("/checkout/thank-you", Page("confirmation")),
        ("/collections", Page("other")),
        ("/collections/a/b", Page("other")),
        ("/static/shop.css", Page("other")),
    ],
)
def test_repo_patterns(path: str, page: Page) -> None:
    assert CLASSIFY(path) == page


@pytest.mark.parametrize(
    "patterns",
    [
        [("home", "no-slash")],
        [("home", "/{nope}")],
        [("landing", "/")],
    ],
)
def test_bad_patterns_are_rejected(patterns: list[tuple[str, str]]) -> None:
    with pytest.raises(PatternError):
        PageClassifier(patterns)


def test_regex_characters_in_patterns_are_literal() -> None:
    c = PageClassifier([("search", "/search.php"), ("other", "/a+b")])
    assert c.classify("/search.php").type == "search"
    assert c.classify("/searchXphp").type == "other"
    assert c.classify("/aab").type == "other"


OSCAR = PageClassifier([
    ("category", "/catalogue/category/**/{category}_*/"),
    ("product", "/catalogue/{product}_*/"),
    ("cart", "/basket/"),
])


@pytest.mark.parametrize(("path", "page"), [
    ("/catalogue/category/sneakers_2/", Page("category", "sneakers")),
    ("/catalogue/category/shoes/running_3/", Page("category", "running")),  # nested: the deepest counts
    ("/catalogue/category/shoes/trail/fell-runners_9/", Page("category", "fell-runners")),
    ("/catalogue/aero-runner_12/", Page("product", None, "aero-runner")),
    ("/catalogue/trail_runner_5/", Page("product", None, "trail_runner")),  # the id after the last "_"
    ("/catalogue/category/", Page("other")),
    ("/catalogue/category/sneakers/", Page("other")),  # no "_id": not Oscar's shape
    ("/basket/", Page("cart")),
])
def test_oscar_style_paths_with_ids_and_nested_categories(path: str, page: Page) -> None:
    assert OSCAR.classify(path) == page


def test_nested_segments_match_whole_segments_only() -> None:
    c = PageClassifier([("category", "/c/**/{category}")])
    assert c.classify("/c/x").category == "x"  # zero segments between
    assert c.classify("/c/a/b/x").category == "x"
    assert c.classify("/cx").type == "other" and c.classify("/c//x").type == "other"


@pytest.mark.parametrize(("location", "expected"), [
    ("http://origin:8788/page?from=redirect", "/page?from=redirect"),
    ("http://origin:8788", "/"),
    ("http://origin:8788?x=1", "/?x=1"),  # the origin's own address still, not a way out through it
    ("http://origin:8788#top", "/#top"),
    # a relative Location a browser would read as another host: absolute on our host instead
    ("http://origin:8788//evil.example/x", "https://shop.example//evil.example/x"),
    ("http://origin:8788/\\evil.example/x", "https://shop.example/\\evil.example/x"),
    ("http://origin:8788/\t/evil.example/x", "https://shop.example/\t/evil.example/x"),
    ("http://origin:87889/x", None),  # another port
    ("http://origin:8788.evil.example/x", None),  # another host
    ("https://elsewhere.example/x", None),
])
def test_origin_redirects_to_its_own_address_come_back_to_our_host(location: str, expected: str | None) -> None:
    from urllib.parse import urljoin, urlsplit

    from nudge.visitor.pages import own_location

    moved = own_location(location, "http://origin:8788", "https://shop.example")
    assert moved == expected
    if moved is not None:  # where a browser goes: tabs dropped, backslashes read as slashes
        cleaned = "".join(c for c in moved if c not in "\t\r\n").replace("\\", "/")
        assert urlsplit(urljoin("https://shop.example/a", cleaned)).netloc == "shop.example"


def test_same_site_path_refuses_every_whitespace_and_unprintable_character() -> None:
    # The fast form (isprintable and no ' ') equals "no whitespace, nothing unprintable" for every
    # code point: whitespace other than ' ' is unprintable.
    import sys

    assert all((c.isspace() or not c.isprintable()) == (not c.isprintable() or c == " ")
               for c in map(chr, range(sys.maxunicode + 1)))
    for c in ("\t", "\n", "\x0b", "\xa0", "\u2028", "\u3000", " ", "\x00", "\x7f"):
        assert not same_site_path(f"/a{c}b")
    assert same_site_path("/caf\u00e9/\u65e5\u672c")
