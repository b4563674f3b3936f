"""Small factories shared by the core tests."""

from __future__ import annotations

import json
import re

from nudge.engine import Engine, KeyEvent, PageRequest, Reply
from nudge.isolate_memory import IsolateMemory
from nudge.rules.load import load_ruleset
from nudge.rules.model import RuleSet
from nudge.visitor.attributes import RequestContext
from nudge.visitor.session import Session
from nudge_tools.visits import NOW, ROOT, heavy_history, repo_rule_files, session, typical_visit

__all__ = ["NOW", "PRODUCTS", "ROOT", "RULE", "SECRET", "cookie_value", "heavy_history", "make_app", "post_beacon",
           "repo_rule_files", "repo_ruleset", "req", "session", "typical_visit", "visit"]

SECRET = [b"test-secret"]
RULE = "sneakers-exit-intent"  # the story rule: a modal with an offer, after dwell on sneakers
PRODUCTS = [f"/collections/sneakers/products/p{i}" for i in range(3)]


def repo_ruleset() -> RuleSet:
    return load_ruleset(repo_rule_files())


def make_app(files: dict[str, str] | None = None) -> Engine:
    return Engine(load_ruleset(files or repo_rule_files()), SECRET, "/* client */")


def post_beacon(app: Engine, body: bytes, s: Session, now: int, site: str = "",
                memory: IsolateMemory | None = None) -> tuple[Reply, KeyEvent]:
    """POST /_nudge/beacon as the edge handles it: the beacon read and validated, then applied
    (by a fresh isolate unless `memory` says what it remembers)."""
    beacon = app.read_beacon("POST", body, "application/json")
    assert not isinstance(beacon, Reply), beacon
    return app.apply_beacon(memory or IsolateMemory(), beacon, s, now, True, site)


def req(path: str, secure: bool = True) -> PageRequest:
    return PageRequest(RequestContext(path=path), secure=secure)


def cookie_value(set_cookie: str) -> tuple[str, str]:
    name, _, rest = set_cookie.partition("=")
    return name, rest.split(";")[0]


def visit(app: Engine, paths: list[str], dwell: int = 0, memory: IsolateMemory | None = None) -> tuple[Session, str]:
    """Serves pages in order, as a browser would, carrying cookies, all from one isolate (a fresh
    one unless `memory` says what it remembers); dwell is reported for the first."""
    memory = memory or IsolateMemory()
    jar: dict[str, str] = {}
    body = ""
    for i, path in enumerate(paths):
        s = app.load_session(jar, NOW + i)
        plan = app.plan_page(memory, req(path), s, app.active_offer(jar, NOW + i), None, NOW + i)
        jar.update(cookie_value(c) for c in plan.set_cookies)
        if i == 0 and dwell:
            pv = json.loads(re.search(r'id="nudge-config">(.*?)</script>', plan.body_end).group(1))["pv"]  # type: ignore[union-attr]
            jar["nudge_dw"] = f"{pv}.{dwell}"
        body = plan.body_end
    return app.load_session(jar, NOW + len(paths)), body
