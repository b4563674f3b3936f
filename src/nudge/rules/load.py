"""Loading rule files: what marketers write in `rules/*.toml`, validated into a `RuleSet`.

`pages.toml` holds the page patterns, `site.toml` the site's settings, `catalog.toml` the products;
every other file holds one rule (`rules/load_rule.py`). Validation is strict and names the file and
field, so a typo never silently disables a rule: the Worker refuses to load an invalid rule set (and
the bundle step fails before deploy).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nudge.delivery.exclusions import DEFAULT_EXCLUDE, MAX_EXCLUDE
from nudge.delivery.price_selectors import PriceConfigError, PriceSelector, parse_price_selectors
from nudge.offer_apply import APPLY_MODES, DEFAULT_MODE, HEADER_TRUST, apply_url_problem
from nudge.rules.load_rule import load_rule
from nudge.rules.model import Rule, RuleSet, Settings
from nudge.rules.product_feed import CATALOG_FILE, EMPTY, CatalogError, load_catalog
from nudge.rules.toml_fields import Fields, RuleError, int_in, locate, one_of, parse_toml, same_site_path_field
from nudge.visitor.cart_routes import CartConfigError, CartEndpoints, parse_cart_config
from nudge.visitor.pages import PageClassifier, PatternError

__all__ = ["PAGES_FILE", "SITE_FILE", "RuleError", "load_ruleset"]  # RuleError: what load_ruleset raises

PAGES_FILE = "pages.toml"
SITE_FILE = "site.toml"


def load_ruleset(files: Mapping[str, str]) -> RuleSet:
    """A validated rule set from {file name: TOML text}; raises RuleError."""
    if PAGES_FILE not in files:
        raise RuleError(PAGES_FILE, "-", "missing: page patterns are required")
    try:
        classifier = _load_pages(parse_toml(PAGES_FILE, files[PAGES_FILE]))
    except RuleError as exc:
        raise exc.located(files[PAGES_FILE]) from None
    rules: list[Rule] = []
    catalog = EMPTY
    if CATALOG_FILE in files:
        try:
            catalog = load_catalog(parse_toml(CATALOG_FILE, files[CATALOG_FILE]))
        except CatalogError as exc:
            raise RuleError(CATALOG_FILE, exc.field, exc.message).located(files[CATALOG_FILE]) from None
    for name in sorted(files):
        if name in (PAGES_FILE, SITE_FILE, CATALOG_FILE):
            continue
        try:
            rule = load_rule(name, parse_toml(name, files[name]))
        except RuleError as exc:
            raise exc.located(files[name]) from None
        if any(r.id == rule.id for r in rules):
            raise RuleError(name, "id", f"duplicate rule id {rule.id!r}")
        if rule.action.kind == "recommendations" and not catalog.products:
            error = RuleError(name, "action.kind", f"recommendations need products: add rules/{CATALOG_FILE}")
            raise error.located(files[name])
        rules.append(rule)
    order = {r.id: i for i, r in enumerate(rules)}
    rules.sort(key=lambda r: (-r.priority, order[r.id]))
    try:
        cart, settings = (_load_site(parse_toml(SITE_FILE, files[SITE_FILE])) if SITE_FILE in files
                          else (None, Settings()))
    except RuleError as exc:
        raise exc.located(files[SITE_FILE]) from None
    _check_apply_url(rules, settings, files)
    onsite = tuple(r for r in rules if not r.action.followup)
    return RuleSet(classifier, onsite, cart, settings, catalog, tuple(r for r in rules if r.action.followup))


def _load_site(data: dict[str, Any]) -> tuple[CartEndpoints | None, Settings]:
    site = Fields(SITE_FILE, data)
    table = site.get("cart", dict, None)
    limits = Fields(SITE_FILE, site.get("nudges", dict, {}), "nudges.")
    shop = Fields(SITE_FILE, site.get("shop", dict, {}), "shop.")
    exclude, prices = _load_site_table(Fields(SITE_FILE, site.get("site", dict, {}), "site."))
    site.done()
    currency = shop.text("currency", "USD", limit=3)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise shop.fail("currency", "expected an ISO 4217 code like USD or EUR")
    free = shop.get("free_shipping_over", (int, float), None)
    if free is not None and not 0 < free <= 100_000:
        raise shop.fail("free_shipping_over", "expected an amount above 0")
    settings = Settings(
        max_per_page=int_in(limits, "max_per_page", 2, 1, 10),
        max_per_session=int_in(limits, "max_per_session", 6, 1, 100),
        currency=currency,
        free_shipping_over=None if free is None else float(free),
        **_offer_settings(shop),
        exclude=exclude,
        prices=prices,
    )
    limits.done()
    shop.done()
    if table is None:
        return None, settings
    try:  # the [cart] table's model and checks live with the code that matches it (visitor/cart_routes.py)
        return parse_cart_config(table), settings
    except CartConfigError as exc:
        raise RuleError(SITE_FILE, "cart." + exc.field, exc.message) from None


def _load_site_table(f: Fields) -> tuple[tuple[str, ...], tuple[PriceSelector, ...]]:
    """[site]: the paths nudge passes through, and where pages show prices without its markup."""
    exclude = _load_exclude(f)
    try:  # the model and checks live with the code that matches them (delivery/price_selectors.py)
        prices = parse_price_selectors(f.get("prices", list, []))
    except PriceConfigError as exc:
        raise f.fail("prices", str(exc)) from None
    f.done()
    return exclude, prices


def _load_exclude(f: Fields) -> tuple[str, ...]:
    """[site] exclude: the whole list of path globs nudge passes through (the defaults when absent;
    a list replaces them, so `exclude = []` excludes nothing)."""
    globs = f.get("exclude", list, list(DEFAULT_EXCLUDE))
    if len(globs) > MAX_EXCLUDE:
        raise f.fail("exclude", f"more than {MAX_EXCLUDE} globs")
    for glob in globs:
        if not isinstance(glob, str) or len(glob) > 200:
            raise f.fail("exclude", "expected path globs (strings of at most 200 characters)")
        same_site_path_field(f, "exclude", glob)
    return tuple(globs)


def _load_pages(data: dict[str, Any]) -> PageClassifier:
    entries = data.get("page")
    if not isinstance(entries, list) or not entries:
        raise RuleError(PAGES_FILE, "page", "expected one or more [[page]] tables")
    patterns: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        field = f"page[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"type", "pattern"}:
            raise RuleError(PAGES_FILE, field, "expected exactly `type` and `pattern`")
        try:  # one entry at a time, so the error names the entry (and its line)
            PageClassifier([(str(entry["type"]), str(entry["pattern"]))])
        except PatternError as exc:
            key = "type" if "page type" in str(exc) else "pattern"
            raise RuleError(PAGES_FILE, f"{field}.{key}", str(exc)) from None
        patterns.append((str(entry["type"]), str(entry["pattern"])))
    return PageClassifier(patterns)


def _offer_settings(shop: Fields) -> dict[str, Any]:
    """[shop] offer_apply, offer_apply_url and offer_header (offer_apply.py says what they mean)."""
    url = shop.text("offer_apply_url", "")
    problem = apply_url_problem(url) if url else None
    if problem:
        raise shop.fail("offer_apply_url", problem)
    return {"offer_apply": one_of(shop, "offer_apply", APPLY_MODES, DEFAULT_MODE), "offer_apply_url": url,
            "offer_header": one_of(shop, "offer_header", HEADER_TRUST, "confirmed")}


def _check_apply_url(rules: list[Rule], settings: Settings, files: Mapping[str, str]) -> None:
    """An offer applied by URL needs the platform's URL: refused here, not discovered at the button."""
    if settings.offer_apply_url:
        return
    if settings.offer_apply == "url":
        raise RuleError(SITE_FILE, "shop.offer_apply_url", "required when offer_apply = \"url\" "
                        "(e.g. \"/discount/{code}?redirect={redirect}\")", locate(files[SITE_FILE], "shop.offer_apply"))
    for rule in rules:
        if rule.offer is not None and rule.offer.apply == "url":
            raise RuleError(rule.file, "offer.apply", f"\"url\" needs [shop] offer_apply_url in {SITE_FILE} "
                            "(e.g. \"/discount/{code}?redirect={redirect}\")").located(files[rule.file])
