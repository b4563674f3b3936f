"""Why a rule fired or not, for one browser and one page: the QA view behind `/_nudge/explain`.

It runs the same decision the page gets (`decide` with a `why` map), then adds what `decide` does
not need to know: rules that were never candidates, and which part of a false condition failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any

from nudge.rules.conditions import evaluate
from nudge.rules.decide import Nudge
from nudge.rules.model import Rule, RuleSet


@dataclass(frozen=True)
class Verdict:
    rule: str
    outcome: str  # "shown", "held out", "shadow", "not shown"
    reason: str
    failing: tuple[str, ...] = ()  # condition parts that are false, with the visitor's values


def verdicts(ruleset: RuleSet, page_type: str, decided: list[Nudge], why: dict[str, str],
             attributes: dict[str, Any]) -> list[Verdict]:
    """Every rule, in priority order, with its outcome for this request."""
    chosen = {n.rule.id: n for n in decided}
    candidates = {r.id for r in ruleset.candidates(page_type)}
    out = []
    for rule in ruleset.rules:
        nudge = chosen.get(rule.id)
        if nudge is not None:
            outcome = "shadow" if nudge.shadow else "held out" if nudge.held_out else "shown"
            reason = {"shadow": "shadow mode: measured, never shown",
                      "held out": f"in the {rule.holdout:g}% holdout (control group): measured, never shown",
                      "shown": _when(nudge)}[outcome]
            out.append(Verdict(rule.id, outcome, reason))
        elif not rule.enabled:
            out.append(Verdict(rule.id, "not shown", "disabled (enabled = false)"))
        elif rule.id not in candidates:
            out.append(Verdict(rule.id, "not shown", f"page: a {page_type} page is not one of its pages"))
        else:
            reason = why.get(rule.id, "condition: false")
            failing = failing_conditions(rule, attributes) if reason.startswith("condition") else ()
            out.append(Verdict(rule.id, "not shown", reason, failing))
    return out


def _when(n: Nudge) -> str:
    trigger = n.rule.trigger.replace("_", " ")
    if n.min_dwell:
        return f"rendered hidden; revealed after {n.min_dwell} more visible seconds and {trigger}"
    return "shown on page load" if n.rule.trigger == "page_load" else f"rendered hidden until {trigger}"


def failing_conditions(rule: Rule, attributes: dict[str, Any]) -> tuple[str, ...]:
    """The top-level parts of the rule's condition that are false, each with the visitor's value."""
    failing = []
    for key, expected in rule.when.items():
        if evaluate({key: expected}, attributes):
            continue
        actual = _value(attributes, key) if not key.startswith("$") else "(see the sub-conditions)"
        failing.append(f"{key}: wants {json.dumps(expected)}, visitor has {json.dumps(actual, default=str)}")
    return tuple(failing)


def _value(attributes: dict[str, Any], path: str) -> Any:
    value: Any = attributes
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def explain_json(status: str, path: str, attributes: dict[str, Any], items: list[Verdict],
                 cart: dict[str, Any] | None = None) -> str:
    """`cart`: where the visitor's cart figures come from (cart_truth.cart_explained)."""
    return json.dumps({"visitor": status, "path": path, "attributes": attributes, "cart": cart or {},
                       "rules": [v.__dict__ | {"failing": list(v.failing)} for v in items]}, indent=2, default=str)


def explain_html(status: str, path: str, attributes: dict[str, Any], items: list[Verdict],
                 cart: dict[str, Any] | None = None) -> str:
    """A self-contained page (no scripts, no external requests); every value escaped."""
    rows = "".join(
        f'<tr class="{escape(v.outcome.replace(" ", "-"))}"><th scope="row">{escape(v.rule)}</th>'
        f"<td>{escape(v.outcome)}</td><td>{escape(v.reason)}"
        + ("<ul>" + "".join(f"<li><code>{escape(f)}</code></li>" for f in v.failing) + "</ul>" if v.failing else "")
        + "</td></tr>"
        for v in items
    )
    attrs = escape(json.dumps(attributes, indent=2, default=str))
    source = escape(json.dumps(cart or {}, indent=2, default=str))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        "<title>nudge explain</title><style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#111}"
        "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:6px 8px;text-align:left;"
        "vertical-align:top}tr.shown td:nth-child(2){color:#0a6b2d;font-weight:600}pre{background:#f5f5f5;padding:1rem;"
        "overflow:auto}</style></head><body>"
        f"<h1>nudge explain</h1><p>Page <code>{escape(path)}</code>, visitor: <strong>{escape(status)}</strong></p>"
        f'<table><caption>Rules, highest priority first</caption><thead><tr><th scope="col">rule</th>'
        f'<th scope="col">outcome</th><th scope="col">why</th></tr></thead><tbody>{rows}</tbody></table>'
        f"<h2>Visitor attributes</h2><pre>{attrs}</pre>"
        f"<h2>Where the cart figures come from</h2><pre>{source}</pre></body></html>"
    )
