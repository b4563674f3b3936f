from __future__ import annotations

import pytest

from nudge.pages import Page, PageClassifier, PatternError

from .factories import repo_ruleset

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
