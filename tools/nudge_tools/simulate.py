"""Replaying recorded sessions through the engine: which rules reach whom, how many impressions
survive caps, and which rules lose conflicts to higher-priority ones. Plus a generator of realistic
synthetic sessions to replay.

A session (one JSON object per line): ``{"visitor": "<16 hex>", "start": <unix>, "events": [...]}``
with events ``{"t": <seconds from start>, "page": "/path?query"}``, ``{"t": ..., "dwell": <seconds
on the last page>}`` or ``{"t": ..., "beacon": {<beacon body>}}``.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nudge.rules.decide import Nudge, decide
from nudge.rules.model import RuleSet
from nudge.visitor.attributes import RequestContext, visitor_attributes
from nudge.visitor.beacon import BeaconError, parse_beacon
from nudge.visitor.pages import Page
from nudge.visitor.session import Session
from nudge.visitor.tracking import apply_beacon, credit_dwell, record_page_view


@dataclass
class RuleReport:
    reached: set[str] = field(default_factory=set)  # visitors the rule was decided for
    impressions: int = 0  # shown (decided, not held out), after caps
    held_out: int = 0
    lost: int = 0  # eligible, but the page's limits went to higher-priority rules


@dataclass
class Report:
    sessions: int = 0
    pages: int = 0
    bad_lines: int = 0
    rules: dict[str, RuleReport] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"{self.sessions} sessions, {self.pages} pages, {self.bad_lines} unreadable lines",
                 f"{'rule':32} {'visitors reached':>17} {'impressions':>12} {'held out':>9} {'conflicts lost':>15}"]
        for rule_id, r in sorted(self.rules.items()):
            lines.append(f"{rule_id:32} {len(r.reached):>17} {r.impressions:>12} {r.held_out:>9} {r.lost:>15}")
        return "\n".join(lines)


def _alone(ruleset: RuleSet, rule_id: str) -> RuleSet:
    rule = ruleset.rule(rule_id)
    return RuleSet(ruleset.classifier, (rule,) if rule else (), ruleset.cart, ruleset.settings)


def replay(lines: Iterable[str], ruleset: RuleSet, report: Report | None = None) -> Report:
    """Replays sessions. A decided nudge counts as an impression (and against its caps) when the
    page's recorded dwell reaches its wait; exit-intent nudges are assumed to fire when the page
    is left, so they count once due."""
    report = report or Report(rules={r.id: RuleReport() for r in ruleset.rules})
    singles = {r.id: _alone(ruleset, r.id) for r in ruleset.rules}
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            visitor = bytes.fromhex(data["visitor"])
            start, events = int(data["start"]), list(data["events"])
        except (ValueError, KeyError, TypeError):
            report.bad_lines += 1
            continue
        report.sessions += 1
        session = Session.fresh(start, visitor)
        pv, dwell = 0, 0
        pending: list[Nudge] = []
        for event in events:
            if not isinstance(event, dict):
                continue
            now = start + int(event.get("t", 0))
            if "page" in event:
                _settle(pending, dwell, session, report)
                path, _, query = str(event["page"]).partition("?")
                page = ruleset.classifier.classify(path)
                pv = record_page_view(session, page, now, query)
                report.pages += 1
                pending, dwell = _decide_page(ruleset, singles, session, page, path, now, report), 0
            elif "dwell" in event and pv:
                dwell = max(dwell, int(event["dwell"]))
                credit_dwell(session, pv, dwell, now)
            elif "beacon" in event:
                try:
                    beacon = parse_beacon(json.dumps(event["beacon"]).encode(), "application/json")
                except BeaconError:
                    continue
                apply_beacon(session, beacon, now)
        _settle(pending, dwell, session, report)
    return report


def _settle(pending: list[Nudge], dwell: int, session: Session, report: Report) -> None:
    """Counts the page's nudges whose wait its dwell reached as impressions."""
    for nudge in pending:
        if dwell >= max(nudge.min_dwell, nudge.wait):
            report.rules[nudge.rule.id].impressions += 1
            session.shown[nudge.rule.key] = session.shown.get(nudge.rule.key, 0) + 1
    pending.clear()


def _decide_page(ruleset: RuleSet, singles: dict[str, RuleSet], session: Session, page: Page,
                 path: str, now: int, report: Report) -> list[Nudge]:
    """Decides a page; returns the nudges rendered into it (they become impressions when due)."""
    attributes = visitor_attributes(session, page, None, now, RequestContext(path=path))
    decided = decide(ruleset, attributes, page, session, now, None, path)
    chosen = {n.rule.id for n in decided}
    for nudge in decided:
        r = report.rules[nudge.rule.id]
        r.reached.add(session.visitor_id)
        r.held_out += nudge.held_out
    for rule in ruleset.candidates(page.type):
        if rule.id not in chosen and decide(singles[rule.id], attributes, page, session, now, None, path):
            report.rules[rule.id].lost += 1
    return [n for n in decided if not n.hidden]


# -- synthetic sessions ----------------------------------------------------------------------------

CATALOG = {
    "sneakers": ["aero-runner", "court-classic", "trail-sprint", "cloud-knit", "retro-high"],
    "boots": ["chelsea-boot", "hiker-mid", "winter-lace", "work-boot"],
    "accessories": ["merino-crew-socks", "suede-care-kit", "waxed-laces", "insoles", "shoe-bag"],
}
SKUS = {"sneakers": "SNK", "boots": "BT", "accessories": "ACC"}


def generate(count: int, seed: int = 1, start: int = 1_790_000_000) -> Iterator[str]:
    """Realistic-looking sessions: most visitors browse one or two categories, some linger on a
    favourite, a fifth add to cart, a few check out; dwell per page is long-tailed."""
    rng = random.Random(seed)
    for n in range(count):
        t = 0
        events: list[dict[str, Any]] = [{"t": t, "page": "/"}]
        focus = rng.choice(list(CATALOG))
        for _ in range(rng.choice([1, 1, 2, 2, 3, 5, 8, 12])):
            category = focus if rng.random() < 0.7 else rng.choice(list(CATALOG))
            t += int(rng.expovariate(1 / 20)) + 2
            events.append({"t": t, "page": f"/collections/{category}"})
            events.append({"t": t + 5, "dwell": int(rng.expovariate(1 / 15))})
            for product in rng.sample(CATALOG[category], rng.randint(0, 3)):
                t += int(rng.expovariate(1 / 30)) + 3
                events.append({"t": t, "page": f"/collections/{category}/products/{product}"})
                events.append({"t": t + 5, "dwell": int(rng.expovariate(1 / 60))})
        if rng.random() < 0.2:
            sku = f"{SKUS[focus]}-00{rng.randint(1, 4)}"
            events.append({"t": t + 10, "beacon": {"events": [
                {"type": "add_to_cart", "items": [{"id": sku, "quantity": 1}], "value": 99.0}]}})
            if rng.random() < 0.3:
                events.append({"t": t + 60, "page": "/checkout"})
                events.append({"t": t + 90, "beacon": {"events": [{"type": "purchase", "value": 99.0}]}})
        visitor = f"{rng.getrandbits(64):016x}"
        yield json.dumps({"visitor": visitor, "start": start + n * 37, "events": events})


def summary(report: Report) -> Counter[str]:
    return Counter({rule_id: r.impressions for rule_id, r in report.rules.items()})
