"""Fuzzing a whole page decision with hostile request values: path, query, referrer, User-Agent,
cookies and JSON-LD facts all carry a marker, and rules print every URL-derived attribute.

Properties: planning never raises; nothing of the marker reaches the HTML nudge injects as markup;
the log line holds no path or query; Set-Cookie values stay in cookie syntax."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from nudge.engine import Engine, PageRequest
from nudge.isolate_memory import IsolateMemory
from nudge.rules.load import load_ruleset
from nudge.visitor.attributes import RequestContext
from nudge.visitor.product_facts import ProductFacts
from nudge.visitor.session import Session

from ..core.factories import NOW, repo_rule_files
from .profile import fuzz
from .strategies import PATHS, QUERIES, REFERRERS, SHORT, TEXT

MARK = "<x-evil a=\"b\" c='d'>"
ECHOED = ("page.category", "page.product", "page.path", "utm.source", "utm.campaign", "referrer.host",
          "session.searches")
ECHO = {f"echo-{i}.toml": f'id = "echo-{i}"\n[action]\nkind = "badge"\nslot = "echo-{i}"\n'
                          f'title = "{{{{ {path} }}}}"\n'
        for i, path in enumerate(ECHOED)}
APP = Engine(load_ruleset({**repo_rule_files(), **ECHO}), [b"fuzz-secret"], "/* client */")


def marked(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda a, b, at: a[:at] + MARK + a[at:] + b, strategy, SHORT, st.integers(0, 80))


@fuzz(
    marked(PATHS) | PATHS,
    marked(QUERIES) | QUERIES | st.builds(lambda v: f"utm_source={v}&utm_campaign={v}&q={v}", marked(SHORT)),
    marked(REFERRERS.filter(bool)) | REFERRERS | st.builds(lambda h: f"https://{h}/", marked(SHORT)),
    marked(TEXT) | TEXT,
    st.dictionaries(st.sampled_from(["nudge_msg", "nudge_dw", "nudge", "shop"]), marked(SHORT) | TEXT, max_size=3),
    st.none() | st.builds(lambda c, n: ProductFacts("p-1", n, 10.0, "USD", c), marked(SHORT) | SHORT, marked(TEXT)),
    st.booleans(),
)
def test_page_plan(path: str, query: str, referrer: str | None, agent: str, cookies: dict[str, str],
                   facts: ProductFacts | None, tracked: bool) -> None:
    session = APP.load_session(cookies, NOW)
    request = PageRequest(RequestContext(path, agent, "US", "Europe/Berlin"), query, "shop.example", referrer, True)
    plan = APP.plan_page(IsolateMemory(), request, session, None, None, NOW, tracked=tracked, cookies=cookies,
                         facts=facts)
    html = plan.head + plan.body_start + plan.body_end + "".join(h for _, h in plan.slots.values())
    # the page config is JSON in an inert script element: only its end tag could be forged there
    html, config = re.subn(r'<script type="application/json" id="nudge-config">([^<]*)</script>', "", html)
    assert config == (1 if plan.body_end else 0)
    assert "<x-evil" not in html and "c='d'" not in html and 'a="b"' not in html
    log = plan.log_line("tracked", "v1", 0.1, 4, True)
    assert "x-evil" not in log  # no path, query, referrer, agent, cookie or fact in the log line
    for cookie in plan.set_cookies:
        assert not any(c in cookie for c in "\r\n\x00") and cookie.split("=", 1)[0].startswith("nudge")
    assert isinstance(plan.session, Session)
