"""Rule files: parsing and validating what marketers write in `rules/*.toml`.

`pages.toml` holds the page patterns; every other file holds one rule. Validation is strict and
names the file and field, so a typo never silently disables a rule: the Worker refuses to load an
invalid rule set (and the bundle step fails before deploy).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .attributes import closest_attribute, known_attribute
from .conditions import OPERATORS, Matcher, compile_condition
from .exclusions import DEFAULT_EXCLUDE, MAX_EXCLUDE
from .pages import PAGE_TYPES, PageClassifier, PatternError, same_site_path
from .schedule import ALWAYS, WEEKDAYS, Schedule, zone
from .keys import key32
from .shop_catalog import CATALOG_FILE, EMPTY, SOURCES, CatalogError, ShopCatalog, load_catalog
from .templates import Template, TemplateError, compile_template

PAGES_FILE = "pages.toml"
SITE_FILE = "site.toml"
TRIGGERS = ("page_load", "exit_intent", "time_on_page", "inactivity", "scroll", "cart_abandoned",
            "browse_abandoned")
# Triggers that take a number: seconds on the page, seconds idle, percent scrolled, minutes since
# the last cart change (without checkout) or since the shopper was last seen; their allowed range.
TRIGGER_VALUES = {"time_on_page": (1, 3600), "inactivity": (5, 3600), "scroll": (1, 100),
                  "cart_abandoned": (1, 7 * 24 * 60), "browse_abandoned": (1, 7 * 24 * 60)}
STOP_AFTER = ("click", "conversion", "never")
ACTION_KINDS = ("modal", "banner", "slot", "badge", "recommendations", "webhook")
# Follow-ups beyond the visit: a `webhook` action, sent through a queue after the shopper left.
FOLLOWUP_TRIGGERS = ("cart_abandoned", "browse_abandoned")
MAX_FOLLOWUP_MINUTES = 12 * 60  # Cloudflare Queues delay a message at most 12 hours
# Kinds that fill a marked element of the page (data-nudge-slot="name") in the initial HTML: content
# rather than messages, so they are shown on page load, take no part in the page's and visit's
# message limits, and are capped only when the rule says so.
INLINE_KINDS = ("slot", "badge", "recommendations")
_SLOT = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
UNCAPPED = 1000
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


class RuleError(ValueError):
    """An invalid rule file; the message names the file, the line when it can be found, and the field."""

    def __init__(self, file: str, field: str, message: str, line: int | None = None) -> None:
        super().__init__(f"{file}{f':{line}' if line else ''}: {field}: {message}")
        self.file, self.field, self.message, self.line = file, field, message, line

    def located(self, text: str) -> RuleError:
        """The same error with the line of the field in the file's text (best effort)."""
        line = self.line or locate(text, self.field)
        return RuleError(self.file, self.field, self.message, line)


def locate(text: str, field: str) -> int | None:
    """The line a dotted field is written on: `[table]` then `key =`, or a quoted condition key."""
    lines = text.splitlines()
    parts = [p for p in re.split(r"\.|\[\d+\]", field) if p]
    if not parts or parts == ["-"]:
        return None
    if parts[0] == "when" and len(parts) > 1:  # condition keys are quoted dotted paths
        key = ".".join(p for p in parts[1:] if not p.startswith("$")) or parts[-1]
        for i, line in enumerate(lines, 1):
            if f'"{key}"' in line or f"'{key}'" in line:
                return i
    start = 0
    if len(parts) > 1:  # find the [table] (or [[table]]) header first
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(parts[0])}\s*\]\]?")
        start = next((i for i, line in enumerate(lines) if header.match(line)), 0)
    key = re.compile(rf"^\s*{re.escape(parts[-1] if len(parts) > 1 else parts[0])}\s*=")
    for i in range(start, len(lines)):
        if key.match(lines[i]) or re.match(rf"^\s*{re.escape(parts[-1])}\s*=", lines[i]):
            return i + 1
    return start + 1 if start else None


@dataclass(frozen=True)
class Texts:
    """An action's texts for one visitor, as escaped HTML."""

    title: str
    body: str
    button: str
    dismiss: str


@dataclass(frozen=True)
class Action:
    kind: str
    title: str
    body: str
    button: str
    dismiss: str
    url: str  # where the button goes when the rule has no offer ("" for none)
    slot: str = ""  # inline kinds: the data-nudge-slot they fill
    sources: tuple[str, ...] = ()  # recommendations: recommend.SOURCES, in order of preference
    limit: int = 4  # recommendations (and a webhook's recommendations): at most this many products
    templates: tuple[Template, ...] = field(default=(), repr=False, compare=False)  # title, body, button, dismiss

    @property
    def inline(self) -> bool:
        return self.kind in INLINE_KINDS

    @property
    def followup(self) -> bool:
        return self.kind == "webhook"

    def texts(self, attributes: dict[str, Any], currency: str = "USD") -> Texts:
        """The texts with their placeholders filled; raises MissingValue when one has no value."""
        t = self.templates or tuple(compile_template(x) for x in (self.title, self.body, self.button, self.dismiss))
        return Texts(*(x.render(attributes, currency) for x in t))


@dataclass(frozen=True)
class Caps:
    per_session: int = 1  # reveals per visit
    per_day: int | None = None  # reveals per UTC day, across visits (from the KV profile)
    per_lifetime: int | None = None
    cooldown_hours: int | None = None  # after a dismiss, across visits
    stop_after: str = "click"  # never again after a click, a conversion, or "never" stop


@dataclass(frozen=True)
class Offer:
    code: str
    percent: int
    category: str
    redirect: str  # same-site path the shopper lands on after redeeming
    valid_hours: int  # the offer lasts this long after redemption...
    until_midnight: bool  # ...or until local midnight ("today only"), whichever is first
    timezone: str
    amount: float | None = None  # a fixed amount off instead of a percentage
    max_per_day: int | None = None  # discount budget: redemptions per day across all visitors
    not_after_purchase_days: int = 30  # no offer to a shopper who bought within this many days (0: off)


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    enabled: bool
    pages: tuple[str, ...]  # page types; empty with no url_globs: every page
    trigger: str
    when: Mapping[str, Any]
    action: Action
    offer: Offer | None
    priority: int
    file: str
    caps: Caps = field(default_factory=Caps)
    trigger_value: int = 0  # seconds, percent or minutes (TRIGGER_VALUES)
    url_globs: tuple[str, ...] = ()  # "/sale/*"
    variants: tuple[tuple[float, Action], ...] = ()  # (weight, action); empty: the action alone
    holdout: float = 0.0  # percent of visitors who never see it (the control group)
    rollout: float = 100.0  # percent of visitors it applies to at all
    schedule: Schedule = ALWAYS
    dwell_categories: frozenset[str] = frozenset()  # categories whose dwell the condition reads
    match: Matcher = field(default=lambda _a: True, repr=False, compare=False)  # `when`, compiled
    key: int = 0  # key32(id), as the session and profile record the rule
    counted: bool = True  # reveals are counted for caps (inline kinds only when the rule has [caps])
    shadow: bool = False  # evaluated and measured as if live, never shown

    @property
    def per_session(self) -> int:
        return self.caps.per_session


@dataclass(frozen=True)
class Settings:
    """Global limits for every rule (rules/site.toml [nudges])."""

    max_per_page: int = 2  # messages (modal, banner) per page
    max_per_session: int = 6  # message reveals per visit
    currency: str = "USD"  # how {{ x | money }} and rewritten prices are written
    free_shipping_over: float | None = None  # the shop's threshold, for cart.free_shipping_left
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE  # path globs passed through untouched ([site] exclude)


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
    settings: Settings = field(default_factory=Settings)
    catalog: ShopCatalog = EMPTY
    followups: tuple[Rule, ...] = ()  # webhook rules, sent after the visit (followup.py), never on pages
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)
    _by_page: dict[str, tuple[Rule, ...]] = field(default_factory=dict, repr=False, compare=False)
    message_keys: set[int] = field(default_factory=set, repr=False, compare=False)  # rules that are messages
    _last_inline: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Indexes rules by id and by page type, so a request pays only for its candidates."""
        self._by_id.update((r.id, r) for r in self.rules)
        self.message_keys.update(r.key for r in self.rules if not r.action.inline)
        for page_type in PAGE_TYPES:
            self._by_page[page_type] = tuple(
                r for r in self.rules if r.enabled and (not r.pages and not r.url_globs
                                                        or page_type in r.pages or r.url_globs))
            self._last_inline[page_type] = max(
                (i for i, r in enumerate(self._by_page[page_type]) if r.action.inline), default=-1)

    def rule(self, rule_id: str) -> Rule | None:
        """An on-site rule by id (follow-ups are not: nothing on a page can name one)."""
        return self._by_id.get(rule_id)

    def followup(self, rule_id: str) -> Rule | None:
        return next((r for r in self.followups if r.id == rule_id), None)

    def last_inline(self, page_type: str) -> int:
        """The position of the last inline rule among the page type's candidates (-1: none), so a
        page whose messages are settled need not walk the rest."""
        return self._last_inline.get(page_type, -1)

    def candidates(self, page_type: str) -> tuple[Rule, ...]:
        """Enabled rules that may apply to a page of this type, in priority order (rules with URL
        globs are candidates everywhere; their glob is checked per request)."""
        return self._by_page.get(page_type, ())


def load_ruleset(files: Mapping[str, str]) -> RuleSet:
    """A validated rule set from {file name: TOML text}; raises RuleError."""
    if PAGES_FILE not in files:
        raise RuleError(PAGES_FILE, "-", "missing: page patterns are required")
    classifier = _load_pages(_parse(PAGES_FILE, files[PAGES_FILE]))
    rules: list[Rule] = []
    catalog = EMPTY
    if CATALOG_FILE in files:
        try:
            catalog = load_catalog(_parse(CATALOG_FILE, files[CATALOG_FILE]))
        except CatalogError as exc:
            raise RuleError(CATALOG_FILE, exc.field, exc.message).located(files[CATALOG_FILE]) from None
    for name in sorted(files):
        if name in (PAGES_FILE, SITE_FILE, CATALOG_FILE):
            continue
        try:
            rule = _load_rule(name, _parse(name, files[name]))
        except RuleError as exc:
            raise exc.located(files[name]) from None
        if any(r.id == rule.id for r in rules):
            raise RuleError(name, "id", f"duplicate rule id {rule.id!r}")
        if rule.action.kind == "recommendations" and not catalog.products:
            raise RuleError(name, "action.kind", f"recommendations need products: add rules/{CATALOG_FILE}").located(files[name])
        rules.append(rule)
    order = {r.id: i for i, r in enumerate(rules)}
    rules.sort(key=lambda r: (-r.priority, order[r.id]))
    cart, settings = _load_site(_parse(SITE_FILE, files[SITE_FILE])) if SITE_FILE in files else (None, Settings())
    onsite = tuple(r for r in rules if not r.action.followup)
    return RuleSet(classifier, onsite, cart, settings, catalog, tuple(r for r in rules if r.action.followup))


def _load_site(data: dict[str, Any]) -> tuple[CartEndpoints | None, Settings]:
    site = _Fields(SITE_FILE, data)
    table = site.get("cart", dict, None)
    limits = _Fields(SITE_FILE, site.get("nudges", dict, {}), "nudges.")
    shop = _Fields(SITE_FILE, site.get("shop", dict, {}), "shop.")
    exclude = _load_exclude(_Fields(SITE_FILE, site.get("site", dict, {}), "site."))
    site.done()
    currency = shop.text("currency", "USD", limit=3)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise shop.fail("currency", "expected an ISO 4217 code like USD or EUR")
    free = shop.get("free_shipping_over", (int, float), None)
    if free is not None and not 0 < free <= 100_000:
        raise shop.fail("free_shipping_over", "expected an amount above 0")
    settings = Settings(
        max_per_page=_int_in(limits, "max_per_page", 2, 1, 10),
        max_per_session=_int_in(limits, "max_per_session", 6, 1, 100),
        currency=currency,
        free_shipping_over=None if free is None else float(free),
        exclude=exclude,
    )
    limits.done()
    shop.done()
    if table is None:
        return None, settings
    f = _Fields(SITE_FILE, table, "cart.")
    cart = CartEndpoints(
        add=_same_site_path(f, "add", f.text("add")),
        remove=_same_site_path(f, "remove", f.text("remove")) if "remove" in table else None,
        item_field=f.text("item_field", "id", limit=64),
        quantity_field=f.text("quantity_field", "quantity", limit=64),
    )
    f.done()
    return cart, settings


def _load_exclude(f: _Fields) -> tuple[str, ...]:
    """[site] exclude: the whole list of path globs nudge passes through (the defaults when absent;
    a list replaces them, so `exclude = []` excludes nothing)."""
    globs = f.get("exclude", list, list(DEFAULT_EXCLUDE))
    f.done()
    if len(globs) > MAX_EXCLUDE:
        raise f.fail("exclude", f"more than {MAX_EXCLUDE} globs")
    for glob in globs:
        if not isinstance(glob, str) or len(glob) > 200:
            raise f.fail("exclude", "expected path globs (strings of at most 200 characters)")
        _same_site_path(f, "exclude", glob)
    return tuple(globs)


def _int_in(f: _Fields, key: str, default: int | None, low: int, high: int) -> Any:
    value = f.get(key, int, default)
    if value is not None and not low <= value <= high:
        raise f.fail(key, f"expected {low}..{high}")
    return value


def _percent(f: _Fields, key: str, default: float, high: float) -> float:
    value = f.get(key, (int, float), default)
    if not 0 <= value <= high:
        raise f.fail(key, f"expected 0..{high:g} (percent)")
    return float(value)


def _parse(name: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"line (\d+)", str(exc))
        line = int(at.group(1)) if at else max(1, len(text.splitlines()))  # "at end of document"
        raise RuleError(name, "-", f"not valid TOML: {exc}", line) from exc


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

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "required")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(key, f"expected {names}, got {type(value).__name__}")
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
    pages, globs = [], []
    for p in f.get("pages", list, []):
        if isinstance(p, str) and p.startswith("/"):
            globs.append(_same_site_path(f, "pages", p))
        elif p in PAGE_TYPES:
            pages.append(p)
        else:
            raise f.fail("pages", f"{p!r} is neither a page type ({', '.join(PAGE_TYPES)}) nor a URL glob ('/sale/*')")
    trigger, trigger_value = _load_trigger(f)
    when = f.get("when", dict, {})
    _check_condition(file, when, "when")
    action = _load_action(file, f.get("action", dict))
    if action.followup:
        _check_followup(f, trigger, trigger_value, pages, globs)
    elif trigger == "browse_abandoned":
        raise f.fail("trigger", "browse_abandoned follows up after the visit: use it with [action] kind = \"webhook\"")
    if action.inline and trigger != "page_load":
        raise f.fail("trigger", f"a {action.kind} is part of the page as it loads: remove the trigger "
                                "(a later reveal would move the page)")
    caps_table = f.get("caps", dict, None)
    offer_table = f.get("offer", dict, None)
    offer = _load_offer(file, offer_table, action.followup) if offer_table is not None else None
    rule = Rule(
        id=rule_id,
        description=f.text("description", "", limit=500),
        enabled=f.get("enabled", bool, True),
        shadow=f.get("shadow", bool, False),
        pages=tuple(pages),
        url_globs=tuple(globs),
        trigger=trigger,
        trigger_value=trigger_value,
        when=when,
        action=action,
        variants=_load_variants(file, f.get("variants", list, []), action),
        holdout=_percent(f, "holdout", 0, 50),
        rollout=_percent(f, "rollout", 100, 100),
        offer=offer,
        caps=_load_caps(file, caps_table or {}, action.inline),
        counted=not action.inline or caps_table is not None,
        schedule=_load_schedule(file, f.get("schedule", dict, None)),
        priority=f.get("priority", int, 0),
        file=file,
        dwell_categories=frozenset(_dwell_categories(when)),
        match=compile_condition(when),
        key=key32(rule_id),
    )
    f.done()
    return rule


def _check_followup(f: _Fields, trigger: str, minutes: int, pages: list[str], globs: list[str]) -> None:
    """A webhook is sent after the visit, so it has a follow-up trigger and no pages, variants or
    page-only settings; its window fits in one queue delay."""
    if trigger not in FOLLOWUP_TRIGGERS:
        raise f.fail("trigger", "a webhook follows up after the visit: use { cart_abandoned = 15 } "
                                "or { browse_abandoned = 30 }")
    if minutes > MAX_FOLLOWUP_MINUTES:
        raise f.fail(f"trigger.{trigger}", f"at most {MAX_FOLLOWUP_MINUTES} minutes (a queue delays a message "
                                           "at most 12 hours)")
    if pages or globs:
        raise f.fail("pages", "a webhook is not shown on pages: remove `pages`")
    if f.table.get("variants"):
        raise f.fail("variants", "a webhook has no variants (A/B test the message in your email tool)")


def _dwell_categories(cond: Any) -> set[str]:
    """Categories whose `dwell_seconds` a condition reads (only those can become true by staying)."""
    found: set[str] = set()
    if isinstance(cond, dict):
        for key, value in cond.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "category" and parts[2] == "dwell_seconds":
                found.add(parts[1])
            found |= _dwell_categories(value)
    elif isinstance(cond, list):
        for item in cond:
            found |= _dwell_categories(item)
    return found


def _load_trigger(f: _Fields) -> tuple[str, int]:
    """`trigger = "exit_intent"` or `trigger = { time_on_page = 20 }`."""
    raw = f.get("trigger", (str, dict), "page_load")
    if isinstance(raw, str):
        if raw not in TRIGGERS or raw in TRIGGER_VALUES:
            hint = f" (write {{ {raw} = N }})" if raw in TRIGGER_VALUES else f"; one of {', '.join(TRIGGERS)}"
            raise f.fail("trigger", f"unknown trigger {raw!r}{hint}")
        return raw, 0
    if len(raw) != 1:
        raise f.fail("trigger", "expected one trigger, e.g. { time_on_page = 20 }")
    (kind, value), = raw.items()
    if kind not in TRIGGER_VALUES:
        raise f.fail(f"trigger.{kind}", f"unknown trigger; with a number: {', '.join(TRIGGER_VALUES)}")
    low, high = TRIGGER_VALUES[kind]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise f.fail(f"trigger.{kind}", f"expected a whole number {low}..{high}")
    return kind, value


def _load_variants(file: str, items: list[Any], base: Action) -> tuple[tuple[float, Action], ...]:
    """`[[variants]]` tables: a `weight` and any action fields that differ from [action]."""
    out = []
    for i, item in enumerate(items):
        f = _Fields(file, item, f"variants[{i}].")
        weight = f.get("weight", (int, float))
        if not 0 < weight <= 100:
            raise f.fail("weight", "expected a percentage above 0")
        fields: dict[str, Any] = {k: f.text(k, getattr(base, k), limit=400)
                                  for k in ("title", "body", "button", "dismiss") if k in item}
        f.done()
        variant = dataclasses.replace(base, **fields)
        out.append((float(weight), dataclasses.replace(variant, templates=_templates(file, f"variants[{i}].", variant))))
    if len(out) == 1:
        raise RuleError(file, "variants", "one variant is no experiment: add another or remove [[variants]]")
    total = sum(weight for weight, _ in out)
    if out and abs(total - 100) > 1e-9:
        raise RuleError(file, "variants", f"weights are percentages and must sum to 100, not {total:g}")
    return tuple(out)


def _load_caps(file: str, table: dict[str, Any], inline: bool = False) -> Caps:
    """Messages default to once per visit and stop after a click; inline content to no caps."""
    f = _Fields(file, table, "caps.")
    caps = Caps(
        per_session=_int_in(f, "per_session", UNCAPPED if inline else 1, 1, UNCAPPED),
        per_day=_int_in(f, "per_day", None, 1, 100),
        per_lifetime=_int_in(f, "per_lifetime", None, 1, 1000),
        cooldown_hours=_int_in(f, "cooldown_hours", None, 1, 24 * 365),
        stop_after=f.text("stop_after", "never" if inline else "click"),
    )
    if caps.stop_after not in STOP_AFTER:
        raise f.fail("stop_after", f"expected one of {', '.join(STOP_AFTER)}")
    f.done()
    return caps


def _timestamp(f: _Fields, key: str, tz: Any) -> int | None:
    value = f.get(key, (datetime, str), None)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise f.fail(key, "expected a date-time like 2026-11-27T00:00:00") from exc
    if value.tzinfo is None:  # a local date-time: in the schedule's time zone
        value = value.replace(tzinfo=tz)
    return int(value.timestamp())


def _load_schedule(file: str, table: dict[str, Any] | None) -> Schedule:
    if table is None:
        return ALWAYS
    f = _Fields(file, table, "schedule.")
    tz_name = f.text("timezone", "UTC", limit=64)
    tz = zone(tz_name)
    if tz is None:
        raise f.fail("timezone", f"unknown time zone {tz_name!r} (use an IANA name like Europe/Berlin)")
    days = f.get("weekdays", list, list(WEEKDAYS))
    if not days or any(d not in WEEKDAYS for d in days):
        raise f.fail("weekdays", f"expected names from {', '.join(WEEKDAYS)}")
    hours = f.get("hours", list, [0, 24])
    if len(hours) != 2 or not all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 24 for h in hours) \
            or hours[0] == hours[1]:
        raise f.fail("hours", "expected [from, to] local hours 0..24, e.g. [9, 17] or [22, 6]")
    schedule = Schedule(
        start=_timestamp(f, "start", tz),
        end=_timestamp(f, "end", tz),
        timezone=tz_name,
        weekdays=frozenset(WEEKDAYS.index(d) for d in days),
        hours=(hours[0], hours[1]),
    )
    if schedule.start is not None and schedule.end is not None and schedule.end <= schedule.start:
        raise f.fail("end", "the schedule ends before it starts")
    f.done()
    return schedule


_LOGIC = ("$and", "$or", "$nor", "$not")
_REGEX_OPERATORS = ("$regex", "$regexi", "$notRegex", "$notRegexi")


def _check_regex(file: str, field: str, pattern: Any) -> None:
    """A regular expression that compiles (one that does not would silently never match)."""
    if not isinstance(pattern, str):
        raise RuleError(file, field, "not a regular expression: expected a string")
    try:
        re.compile(pattern)
    except (re.error, OverflowError) as exc:
        raise RuleError(file, field, f"not a regular expression: {exc}") from None


def _check_condition(file: str, cond: Any, path: str, fields: bool = True) -> None:
    """Rejects unknown `$operators` anywhere in a condition (GrowthBook would treat them as false)
    and unknown attribute paths where a condition names fields, with a did-you-mean hint."""
    if isinstance(cond, float) and cond != cond:
        raise RuleError(file, path, "nan is not a value a condition can compare with")
    if isinstance(cond, dict):
        for key, value in cond.items():
            if key.startswith("$"):
                if key not in OPERATORS and key not in _LOGIC:
                    raise RuleError(file, f"{path}.{key}", "unknown operator")
                if key in ("$and", "$or", "$nor") and not isinstance(value, list):
                    raise RuleError(file, f"{path}.{key}", "expected a list of conditions")
                if key in _REGEX_OPERATORS:
                    _check_regex(file, f"{path}.{key}", value)
                _check_condition(file, value, f"{path}.{key}", fields=key in _LOGIC)
                continue
            if fields and not known_attribute(key):
                guess = closest_attribute(key)
                hint = f": did you mean `{guess}`?" if guess else " (see the README's attribute table)"
                raise RuleError(file, f"{path}.{key}", f"unknown attribute `{key}`{hint}")
            _check_condition(file, value, f"{path}.{key}", fields=False)
    elif isinstance(cond, list):
        for i, item in enumerate(cond):
            _check_condition(file, item, f"{path}[{i}]", fields=fields)


def _load_action(file: str, table: dict[str, Any]) -> Action:
    f = _Fields(file, table, "action.")
    kind = f.text("kind")
    if kind not in ACTION_KINDS:
        raise f.fail("kind", f"unknown kind {kind!r}; one of {', '.join(ACTION_KINDS)}")
    inline = kind in INLINE_KINDS
    slot = f.text("slot", "" if not inline else ..., limit=32) if inline or "slot" in table else ""
    if inline and not _SLOT.match(slot):
        raise f.fail("slot", "the data-nudge-slot name: lowercase letters, digits and '-'")
    if not inline and slot:
        raise f.fail("slot", f"only {', '.join(INLINE_KINDS)} fill a slot")
    sources: tuple[str, ...] = ()
    limit = 4
    if kind == "webhook":
        limit = _int_in(f, "recommendations", 3, 0, 12)
    if kind == "recommendations":
        raw = f.get("sources", list, list(SOURCES))
        if not raw or any(s not in SOURCES for s in raw) or len(set(raw)) != len(raw):
            raise f.fail("sources", f"expected some of {', '.join(SOURCES)}, each once")
        sources = tuple(raw)
        limit = _int_in(f, "limit", 4, 1, 12)
    action = Action(
        kind=kind,
        title=f.text("title", "", limit=120),
        body=f.text("body", "", limit=400),
        button=f.text("button", "", limit=60),
        dismiss=f.text("dismiss", "No thanks", limit=60),
        url=_same_site_path(f, "url", f.text("url", "", limit=500)) if "url" in table else "",
        slot=slot,
        sources=sources,
        limit=limit,
    )
    f.done()
    if not (action.title or action.body) and kind not in ("recommendations", "webhook"):
        raise f.fail("title", "a nudge needs a title or a body")
    return dataclasses.replace(action, templates=_templates(file, "action.", action))


def _templates(file: str, prefix: str, action: Action) -> tuple[Template, ...]:
    """The action's texts compiled as templates ({{ cart.value | money }}); errors name the field."""
    out = []
    for key in ("title", "body", "button", "dismiss"):
        try:
            out.append(compile_template(getattr(action, key)))
        except TemplateError as exc:
            raise RuleError(file, prefix + key, str(exc)) from None
    return tuple(out)


def _same_site_path(f: _Fields, key: str, value: str) -> str:
    if not same_site_path(value):
        raise f.fail(key, "must be a same-site path starting with a single '/'")
    return value


def _offer_category(f: _Fields) -> str:
    """The page category an offer applies to. It travels in the `X-Nudge-Offer` request header
    (`...; category=sneakers; ...`), so CR/LF (header injection) and the header's own `;` and `=`
    are refused; and it is compared with page categories, which are always lower case."""
    category = f.text("category", limit=48)
    if (not category or category != category.strip() or category != category.lower()
            or any(c in ";=," or not c.isprintable() for c in category)):
        raise f.fail("category", "a page category as URLs give it: lower case, printable, "
                                 "no ';', '=' or ',' and no leading or trailing spaces")
    return category


def _load_offer(file: str, table: dict[str, Any], followup: bool = False) -> Offer:
    """A follow-up's offer is a single-use code per message: `code` is then its prefix."""
    f = _Fields(file, table, "offer.")
    code = f.text("code")
    if not _CODE.match(code) or followup and len(code) > 12:
        limit = 12 if followup else 32
        raise f.fail("code", f"use A-Z, 0-9, '-' and '_', at most {limit} characters"
                             + (" (the prefix of each single-use code)" if followup else ""))
    percent = f.get("percent", int, 0)
    amount = f.get("amount", (int, float), None)
    if (percent == 0) == (amount is None):
        raise f.fail("percent", "give either `percent` (1..90) or `amount` (a fixed amount off)")
    if amount is None and not 1 <= percent <= 90:
        raise f.fail("percent", "expected 1..90")
    if amount is not None and not 0 < amount <= 10_000:
        raise f.fail("amount", "expected more than 0 and at most 10000")
    redirect = _same_site_path(f, "redirect", f.text("redirect"))
    max_per_day = _int_in(f, "max_per_day", None, 1, 1_000_000)
    not_after = _int_in(f, "not_after_purchase_days", 30, 0, 3650)
    expires = f.text("expires", "valid_hours" if followup else "midnight")
    valid_hours = f.get("valid_hours", int, 24)
    if not 1 <= valid_hours <= 24 * 30:
        raise f.fail("valid_hours", "expected 1..720")
    if expires not in ("midnight", "valid_hours"):
        raise f.fail("expires", "expected 'midnight' (today only) or 'valid_hours'")
    offer = Offer(
        code=code,
        percent=percent,
        category=_offer_category(f),
        redirect=redirect,
        valid_hours=valid_hours,
        until_midnight=expires == "midnight",
        timezone=f.text("timezone", "UTC", limit=64),
        amount=None if amount is None else float(amount),
        max_per_day=max_per_day,
        not_after_purchase_days=not_after,
    )
    f.done()
    return offer
