"""Loading one rule file: its id, pages, trigger, `when` condition, [action], [[variants]], [offer],
[caps] and [schedule], each field checked and named in the error when it is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Any

from nudge.keys import key32
from nudge.offer_apply import APPLY_MODES
from nudge.rules.conditions import OPERATORS, compile_condition
from nudge.rules.model import (
    ACTION_KINDS,
    FOLLOWUP_TRIGGERS,
    INLINE_KINDS,
    MAX_FOLLOWUP_MINUTES,
    STOP_AFTER,
    TRIGGER_VALUES,
    TRIGGERS,
    UNCAPPED,
    Action,
    Caps,
    Offer,
    Rule,
)
from nudge.rules.product_feed import SOURCES
from nudge.rules.schedule import ALWAYS, WEEKDAYS, Schedule, zone
from nudge.rules.templates import Template, TemplateError, compile_template
from nudge.rules.toml_fields import Fields, RuleError, int_in, one_of, percent, same_site_path_field
from nudge.visitor.attributes import closest_attribute, known_attribute
from nudge.visitor.pages import PAGE_TYPES

_SLOT = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


def load_rule(file: str, data: dict[str, Any]) -> Rule:
    f = Fields(file, data)
    rule_id = f.text("id")
    if not _ID.match(rule_id):
        raise f.fail("id", "use lowercase letters, digits and '-', at most 48 characters")
    pages, globs = [], []
    for p in f.get("pages", list, []):
        if isinstance(p, str) and p.startswith("/"):
            globs.append(same_site_path_field(f, "pages", p))
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
        holdout=percent(f, "holdout", 0, 50),
        rollout=percent(f, "rollout", 100, 100),
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


def _check_followup(f: Fields, trigger: str, minutes: int, pages: list[str], globs: list[str]) -> None:
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


def _load_trigger(f: Fields) -> tuple[str, int]:
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
        f = Fields(file, item, f"variants[{i}].")
        weight = f.get("weight", (int, float))
        if not 0 < weight <= 100:
            raise f.fail("weight", "expected a percentage above 0")
        fields: dict[str, Any] = {k: f.text(k, getattr(base, k), limit=400)
                                  for k in ("title", "body", "button", "dismiss") if k in item}
        f.done()
        variant = dataclasses.replace(base, **fields)
        templates = _templates(file, f"variants[{i}].", variant)
        out.append((float(weight), dataclasses.replace(variant, templates=templates)))
    if len(out) == 1:
        raise RuleError(file, "variants", "one variant is no experiment: add another or remove [[variants]]")
    total = sum(weight for weight, _ in out)
    if out and abs(total - 100) > 1e-9:
        raise RuleError(file, "variants", f"weights are percentages and must sum to 100, not {total:g}")
    return tuple(out)


def _load_caps(file: str, table: dict[str, Any], inline: bool = False) -> Caps:
    """Messages default to once per visit and stop after a click; inline content to no caps."""
    f = Fields(file, table, "caps.")
    caps = Caps(
        per_session=int_in(f, "per_session", UNCAPPED if inline else 1, 1, UNCAPPED),
        per_day=int_in(f, "per_day", None, 1, 100),
        per_lifetime=int_in(f, "per_lifetime", None, 1, 1000),
        cooldown_hours=int_in(f, "cooldown_hours", None, 1, 24 * 365),
        stop_after=f.text("stop_after", "never" if inline else "click"),
    )
    if caps.stop_after not in STOP_AFTER:
        raise f.fail("stop_after", f"expected one of {', '.join(STOP_AFTER)}")
    f.done()
    return caps


def _timestamp(f: Fields, key: str, tz: Any) -> int | None:
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
    f = Fields(file, table, "schedule.")
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
    f = Fields(file, table, "action.")
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
        limit = int_in(f, "recommendations", 3, 0, 12)
    if kind == "recommendations":
        raw = f.get("sources", list, list(SOURCES))
        if not raw or any(s not in SOURCES for s in raw) or len(set(raw)) != len(raw):
            raise f.fail("sources", f"expected some of {', '.join(SOURCES)}, each once")
        sources = tuple(raw)
        limit = int_in(f, "limit", 4, 1, 12)
    action = Action(
        kind=kind,
        title=f.text("title", "", limit=120),
        body=f.text("body", "", limit=400),
        button=f.text("button", "", limit=60),
        dismiss=f.text("dismiss", "No thanks", limit=60),
        url=same_site_path_field(f, "url", f.text("url", "", limit=500)) if "url" in table else "",
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



def _offer_category(f: Fields) -> str:
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
    f = Fields(file, table, "offer.")
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
    redirect = same_site_path_field(f, "redirect", f.text("redirect"))
    max_per_day = int_in(f, "max_per_day", None, 1, 1_000_000)
    not_after = int_in(f, "not_after_purchase_days", 30, 0, 3650)
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
        apply=one_of(f, "apply", APPLY_MODES, None),
    )
    f.done()
    return offer
