"""[site] exclude: the paths nudge passes through untouched (exclusions.py, rules.py)."""

from __future__ import annotations

import pytest

from nudge.delivery.exclusions import DEFAULT_EXCLUDE, is_excluded
from nudge.rules.load import RuleError, load_ruleset
from tests.core.factories import repo_rule_files

PAGES = repo_rule_files()["pages.toml"]


def site(toml: str) -> tuple[str, ...]:
    return load_ruleset({"pages.toml": PAGES, "site.toml": toml}).settings.exclude


@pytest.mark.parametrize("path", [
    "/admin", "/admin/", "/admin/login/?next=/admin/",
    "/dashboard/", "/dashboard/catalogue/products/",  # Oscar's dashboard
    "/wp-admin/post.php",  # WordPress
    "/%61dmin/",  # percent-encoded: most servers decode it to /admin/
    "/Dashboard/", "/WP-ADMIN/",  # any case: excluding a page too many is harmless
])
def test_admin_paths_are_excluded_by_default(path: str) -> None:
    assert is_excluded(path, DEFAULT_EXCLUDE)


@pytest.mark.parametrize("path", [
    "/", "/catalogue/category/sneakers_1/", "/basket/",
    "/my/dashboard/",  # globs match from the path's start
    "/blog/wp-admin-tips",
])
def test_shop_pages_are_not(path: str) -> None:
    assert not is_excluded(path, DEFAULT_EXCLUDE)


def test_the_defaults_hold_without_a_site_table() -> None:
    assert load_ruleset({"pages.toml": PAGES}).settings.exclude == DEFAULT_EXCLUDE
    assert site("[shop]\ncurrency = 'GBP'\n") == DEFAULT_EXCLUDE


def test_a_configured_list_replaces_the_defaults() -> None:
    globs = site('[site]\nexclude = ["/account/*", "/checkout*"]\n')
    assert globs == ("/account/*", "/checkout*")
    assert is_excluded("/checkout/payment/", globs) and not is_excluded("/admin/", globs)
    assert site("[site]\nexclude = []\n") == () and not is_excluded("/admin/", ())


def test_the_repo_site_file_lists_the_defaults() -> None:
    assert site(repo_rule_files()["site.toml"]) == DEFAULT_EXCLUDE


@pytest.mark.parametrize("toml, message", [
    ('[site]\nexclude = "/admin*"\n', "expected list"),
    ("[site]\nexclude = [1]\n", "expected path globs"),
    ('[site]\nexclude = ["admin*"]\n', "same-site path"),
    ('[site]\nexclude = ["//evil.example/*"]\n', "same-site path"),
    ('[site]\nexclude = ["/a"]\nexlude = ["/b"]\n', "unknown field"),
    ("[site]\nexclude = [" + ", ".join(['"/a"'] * 51) + "]\n", "more than 50"),
])
def test_bad_exclusions_are_errors(toml: str, message: str) -> None:
    with pytest.raises(RuleError, match=message) as caught:
        site(toml)
    assert caught.value.file == "site.toml" and caught.value.field.startswith("site.")
