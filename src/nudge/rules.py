"""Rule files: parsing and validating what marketers write in `rules/*.toml`.

`pages.toml` holds the page patterns; every other file holds one rule. Validation is strict and
names the file and field, so a typo never silently disables a rule: the Worker refuses to load an
invalid rule set (and the bundle step fails before deploy).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .conditions import OPERATORS
from .pages import PAGE_TYPES, PageClassifier, PatternError

PAGES_FILE = "pages.toml"
SITE_FILE = "site.toml"
TRIGGERS = ("page_load", "exit_intent")
ACTION_KINDS = ("modal", "banner")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


class RuleError(ValueError):
    """An invalid rule file; the message names the file and field."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__(f"{file}: {field}: {message}")
        self.file, self.field, self.message = file, field, message


@dataclass(frozen=True)
class Action:
    kind: str
    title: str
    body: str
    button: str
    dismiss: str
    url: str  # where the button goes when the rule has no offer ("" for none)


@dataclass(frozen=True)
class Offer:
    code: str
    percent: int
    category: str
    redirect: str  # same-site path the shopper lands on after redeeming
    valid_hours: int  # the offer lasts this long after redemption...
    until_midnight: bool  # ...or until local midnight ("today only"), whichever is first
    timezone: str


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    enabled: bool
    pages: tuple[str, ...]
    trigger: str
    when: Mapping[str, Any]
    action: Action
    offer: Offer | None
    per_session: int
    priority: int
    file: str


@dataclass(frozen=True)
class CartEndpoints:
    """The shop's cart endpoints, watched at the edge so the cart is right even without JavaScript."""

    add: str
    remove: str | None
    item_field: str
    quantity_field: str


@dataclass(frozen=True)
class RuleSet:
    classifier: PageClassifier
    rules: tuple[Rule, ...]  # by priority (highest first), then file order
    cart: CartEndpoints | None = None

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def load_ruleset(files: Mapping[str, str]) -> RuleSet:
    """A validated rule set from {file name: TOML text}; raises RuleError."""
    if PAGES_FILE not in files:
        raise RuleError(PAGES_FILE, "-", "missing: page patterns are required")
    classifier = _load_pages(_parse(PAGES_FILE, files[PAGES_FILE]))
    rules: list[Rule] = []
    for name in sorted(files):
        if name in (PAGES_FILE, SITE_FILE):
            continue
        rule = _load_rule(name, _parse(name, files[name]))
        if any(r.id == rule.id for r in rules):
            raise RuleError(name, "id", f"duplicate rule id {rule.id!r}")
        rules.append(rule)
    order = {r.id: i for i, r in enumerate(rules)}
    rules.sort(key=lambda r: (-r.priority, order[r.id]))
    cart = _load_site(_parse(SITE_FILE, files[SITE_FILE])) if SITE_FILE in files else None
    return RuleSet(classifier, tuple(rules), cart)


def _load_site(data: dict[str, Any]) -> CartEndpoints | None:
    site = _Fields(SITE_FILE, data)
    table = site.get("cart", dict, None)
    site.done()
    if table is None:
        return None
    f = _Fields(SITE_FILE, table, "cart.")
    cart = CartEndpoints(
        add=_same_site_path(f, "add", f.text("add")),
        remove=_same_site_path(f, "remove", f.text("remove")) if "remove" in table else None,
        item_field=f.text("item_field", "id", limit=64),
        quantity_field=f.text("quantity_field", "quantity", limit=64),
    )
    f.done()
    return cart


def _parse(name: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(name, "-", f"not valid TOML: {exc}") from exc


def _load_pages(data: dict[str, Any]) -> PageClassifier:
    entries = data.get("page")
    if not isinstance(entries, list) or not entries:
        raise RuleError(PAGES_FILE, "page", "expected one or more [[page]] tables")
    patterns: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        field = f"page[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"type", "pattern"}:
            raise RuleError(PAGES_FILE, field, "expected exactly `type` and `pattern`")
        patterns.append((str(entry["type"]), str(entry["pattern"])))
    try:
        return PageClassifier(patterns)
    except PatternError as exc:
        raise RuleError(PAGES_FILE, "page", str(exc)) from exc


class _Fields:
    """Typed access to one TOML table, failing with the file and dotted field name."""

    def __init__(self, file: str, table: Any, prefix: str = "") -> None:
        if not isinstance(table, dict):
            raise RuleError(file, prefix.rstrip(".") or "-", "expected a table")
        self.file, self.table, self.prefix = file, table, prefix
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> RuleError:
        return RuleError(self.file, self.prefix + key, message)

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "required")
            return default
        value = self.table[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(key, f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    def text(self, key: str, default: Any = ..., limit: int = 200) -> str:
        value: str = self.get(key, str, default)
        if len(value) > limit:
            raise self.fail(key, f"longer than {limit} characters")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown field")


def _load_rule(file: str, data: dict[str, Any]) -> Rule:
    f = _Fields(file, data)
    rule_id = f.text("id")
    if not _ID.match(rule_id):
        raise f.fail("id", "use lowercase letters, digits and '-', at most 48 characters")
    pages = f.get("pages", list, [])
    for p in pages:
        if p not in PAGE_TYPES:
            raise f.fail("pages", f"unknown page type {p!r}; one of {', '.join(PAGE_TYPES)}")
    trigger = f.text("trigger", "page_load")
    if trigger not in TRIGGERS:
        raise f.fail("trigger", f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    when = f.get("when", dict, {})
    _check_condition(file, when, "when")
    action = _load_action(file, f.get("action", dict))
    offer_table = f.get("offer", dict, None)
    offer = _load_offer(file, offer_table) if offer_table is not None else None
    caps = _Fields(file, f.get("caps", dict, {}), "caps.")
    per_session = caps.get("per_session", int, 1)
    if not 1 <= per_session <= 100:
        raise caps.fail("per_session", "expected 1..100")
    caps.done()
    rule = Rule(
        id=rule_id,
        description=f.text("description", "", limit=500),
        enabled=f.get("enabled", bool, True),
        pages=tuple(pages),
        trigger=trigger,
        when=when,
        action=action,
        offer=offer,
        per_session=per_session,
        priority=f.get("priority", int, 0),
        file=file,
    )
    f.done()
    return rule


def _check_condition(file: str, cond: Any, path: str) -> None:
    """Rejects unknown `$operators` anywhere in a condition (GrowthBook would treat them as false)."""
    if isinstance(cond, dict):
        for key, value in cond.items():
            if key.startswith("$") and key not in OPERATORS and key not in ("$and", "$or", "$nor", "$not"):
                raise RuleError(file, f"{path}.{key}", "unknown operator")
            _check_condition(file, value, f"{path}.{key}")
    elif isinstance(cond, list):
        for i, item in enumerate(cond):
            _check_condition(file, item, f"{path}[{i}]")


def _load_action(file: str, table: dict[str, Any]) -> Action:
    f = _Fields(file, table, "action.")
    kind = f.text("kind")
    if kind not in ACTION_KINDS:
        raise f.fail("kind", f"unknown kind {kind!r}; one of {', '.join(ACTION_KINDS)}")
    action = Action(
        kind=kind,
        title=f.text("title", "", limit=120),
        body=f.text("body", "", limit=400),
        button=f.text("button", "", limit=60),
        dismiss=f.text("dismiss", "No thanks", limit=60),
        url=_same_site_path(f, "url", f.text("url", "", limit=500)) if "url" in table else "",
    )
    f.done()
    if not (action.title or action.body):
        raise f.fail("title", "a nudge needs a title or a body")
    return action


def _same_site_path(f: _Fields, key: str, value: str) -> str:
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(
        c.isspace() or not c.isprintable() for c in value
    ):
        raise f.fail(key, "must be a same-site path starting with a single '/'")
    return value


def _load_offer(file: str, table: dict[str, Any]) -> Offer:
    f = _Fields(file, table, "offer.")
    code = f.text("code")
    if not _CODE.match(code):
        raise f.fail("code", "use A-Z, 0-9, '-' and '_', at most 32 characters")
    percent = f.get("percent", int)
    if not 1 <= percent <= 90:
        raise f.fail("percent", "expected 1..90")
    redirect = _same_site_path(f, "redirect", f.text("redirect"))
    expires = f.text("expires", "midnight")
    valid_hours = f.get("valid_hours", int, 24)
    if not 1 <= valid_hours <= 24 * 30:
        raise f.fail("valid_hours", "expected 1..720")
    if expires not in ("midnight", "valid_hours"):
        raise f.fail("expires", "expected 'midnight' (today only) or 'valid_hours'")
    offer = Offer(
        code=code,
        percent=percent,
        category=f.text("category", limit=48),
        redirect=redirect,
        valid_hours=valid_hours,
        until_midnight=expires == "midnight",
        timezone=f.text("timezone", "UTC", limit=64),
    )
    f.done()
    return offer
