"""QA tools in a real browser: a preview link minted by `nudge preview`, the `/_nudge/explain` page,
and the `nudge report --html` file opened in Chromium with its charts drawn."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from nudge.keys import key32
from nudge.kv_keys import profile_key
from nudge.rules.bucketing import in_holdout
from nudge.rules.load import load_ruleset
from nudge.rules.preview import PreviewTokens
from nudge.signing import Signer
from nudge.visitor.profile import decode_profile
from nudge_tools.inputs import read_rule_files
from nudge_tools.processes import REPO_ROOT
from nudge_tools.processes import events as edge_events

from .conftest import SECRET, Stack, clocked_page, kv_value, shop_behind_edge
from .test_sneakers_story import MODAL, SNEAKERS, move_to_leave
from .test_visitor_model import session_of

TOKEN = "qa-explain-token"
STORY = "sneakers-exit-intent"
RECS = "recommendations"
AERO = "/collections/sneakers/products/aero-runner"
COURT = "/collections/sneakers/products/court-classic"
TRAIL = "/collections/sneakers/products/trail-sprint"
SOCKS = "/collections/accessories/products/merino-crew-socks"
RESULTS = REPO_ROOT / "test-results"
RULE_IDS = [r.id for r in load_ruleset(read_rule_files(REPO_ROOT / "rules")).rules]  # highest priority first


# -- helpers --------------------------------------------------------------------------------------


def nudge_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`nudge ...` as a developer runs it, on this checkout's code."""
    python_path = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT / "tools"), str(REPO_ROOT)])
    env = {**os.environ, "PYTHONPATH": python_path}
    env.pop("NUDGE_SECRET", None)
    return subprocess.run([sys.executable, "-m", "nudge_tools", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def preview_link(stack: Stack, rule: str, *options: str) -> str:
    done = nudge_cli("preview", rule, "--base-url", stack.edge, "--secret", SECRET, *options)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def events(stack: Stack) -> list[dict[str, Any]]:
    """The Analytics Engine data points the edge wrote so far (blobs: event, rule, variant, group,
    visitor, page type, rules version), in the order it wrote them."""
    return edge_events(stack.process)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Polls `condition` (background writes land after the response: never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def visitor_of(context: BrowserContext) -> str:
    session = session_of(context)
    assert session is not None, "no nudge session cookie"
    return session.visitor_id


def events_of(stack: Stack, visitor: str) -> list[dict[str, Any]]:
    return [e for e in events(stack) if e["blobs"][4] == visitor]


def marker_visit(browser: Browser, stack: Stack) -> str:
    """A shopper who is not previewing opens a product page (its recommendations are recorded).
    Once their events are written, anything the requests before them wrote is written too."""
    context = browser.new_context(base_url=stack.edge)
    try:
        page = context.new_page()
        page.goto(AERO)
        visitor = visitor_of(context)
    finally:
        context.close()
    wait_until(lambda: bool(events_of(stack, visitor)), "the marker visitor's events")
    return visitor


def settled(browser: Browser, stack: Stack) -> int:
    """The number of events written once the background writes of every earlier request have landed."""
    marker_visit(browser, stack)
    return len(events(stack))


def cookie_names(context: BrowserContext) -> list[str]:
    return sorted(c["name"] for c in context.cookies())


def nudge_cookies(context: BrowserContext) -> dict[str, str]:
    """nudge's cookies in the browser (not the shop's own), by name."""
    return {c["name"]: c["value"] for c in context.cookies() if c["name"].startswith("nudge")}


def preview_cookie(link: str) -> str:
    return parse_qs(urlsplit(link).query)["t"][0]


def landed_dwell(context: BrowserContext, pv: int) -> int:
    """Seconds of dwell the session cookie has credited to page view `pv` (0: none yet)."""
    session = session_of(context)
    return next((view.credited for view in session.recent if view.pv == pv), 0) if session else 0


def leave_after(page: Page, seconds: int, to: str) -> None:
    """Stays `seconds` on the page (its clock), then goes to `to`, and waits for the answer to the
    page's pagehide beacon: the session cookie credits its dwell. Only that beacon can: the client
    writes nudge_dw every 5 s of dwell and on pagehide, after the next page has been asked for.
    (Playwright reports no beacon sent from an unloading page, so the cookie is what is watched.)"""
    assert seconds < 5
    pv = int(page.evaluate("window.__nudge.pv"))
    page.clock.fast_forward(seconds * 1000)
    page.goto(to)
    wait_until(lambda: landed_dwell(page.context, pv) >= seconds, f"the pagehide beacon of page view {pv}")


def explain_url(path: str, token: str = TOKEN, fmt: str = "") -> str:
    return f"/_nudge/explain?token={quote(token)}&path={quote(path, safe='/')}" + (f"&format={fmt}" if fmt else "")


def explain_json(page: Page, path: str) -> dict[str, Any]:
    """The explain view for the page's browser (its cookies), as JSON."""
    response = page.request.get(explain_url(path, fmt="json"))
    assert response.status == 200, response.text()
    assert response.headers["cache-control"] == "no-store" and "set-cookie" not in response.headers
    data: dict[str, Any] = response.json()
    return data


def outcomes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in data["rules"]}


def row(page: Page, rule: str) -> Any:
    """The explain page's table row of a rule."""
    return page.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=rule, exact=True))


# -- preview --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shop behind an edge with /_nudge/explain switched on, serving rules/ as bundled."""
    with shop_behind_edge(tmp_path_factory.mktemp("kv-qa"), "--var", f"NUDGE_EXPLAIN_TOKEN:{TOKEN}") as s:
        yield s


def test_preview_link_shows_the_popup_at_once_to_a_browser_that_never_browsed(browser: Browser,
                                                                              qa_stack: Stack) -> None:
    link = preview_link(qa_stack, STORY, "--path", SNEAKERS)
    assert link.startswith(f"{qa_stack.edge}/_nudge/preview?t=")
    before = settled(browser, qa_stack)
    with clocked_page(browser, qa_stack) as page:
        beacons: list[str] = []
        page.on("request", lambda r: beacons.append(r.url) if "/_nudge/beacon" in r.url else None)
        response = page.goto(link)
        assert response is not None and response.status == 200
        assert urlsplit(page.url).path == SNEAKERS  # the link's landing page
        # No dwell, no pairs viewed, no pointer leaving: the preview shows the popup at once (its
        # trigger becomes page load), with a notice that this is a preview.
        expect(page.locator(MODAL)).to_be_visible()
        expect(page.locator(MODAL)).to_contain_text("Still thinking?")
        expect(page.get_by_text(f"Preview of {STORY} (variant 0)")).to_be_visible()
        assert page.evaluate("window.__nudge.track") is False

        # Caps do not apply either: closed, it comes back on the next page (per_session = 1).
        page.locator(MODAL).get_by_role("button", name="No thanks").click()
        expect(page.locator(MODAL)).to_be_hidden()
        page.goto(AERO)
        expect(page.locator(MODAL)).to_be_visible()
        page.reload()
        expect(page.locator(MODAL)).to_be_visible()

        # The link expires with the preview cookie, and nothing else is stored in the browser.
        context = page.context
        assert cookie_names(context) == ["nudge_preview"]
        cookie = context.cookies()[0]
        assert cookie["httpOnly"] and abs(cookie["expires"] - (time.time() + 24 * 3600)) < 120
        assert beacons == []  # the client sends nothing while previewing

        # Its button goes where the offer would take the shopper; nothing is redeemed or counted.
        page.locator(MODAL).get_by_role("link", name="Get 10% off sneakers").click()
        expect(page).to_have_url(re.compile(re.escape(SNEAKERS) + "$"))
        expect(page.get_by_role("status").filter(has_text=f"Preview of {STORY}")).to_be_visible()
        expect(page.get_by_text("Sorry")).to_have_count(0)
        expect(page.locator("#nudge-offer-applied")).to_have_count(0)
        assert cookie_names(context) == ["nudge_preview"]

    marker = marker_visit(browser, qa_stack)
    assert {e["blobs"][4] for e in events(qa_stack)[before:]} == {marker}  # the preview recorded nothing


def test_preview_leaves_the_visitors_own_session_and_profile_alone_until_it_ends(
        browser: Browser, qa_stack: Stack) -> None:
    link = preview_link(qa_stack, STORY)
    with clocked_page(browser, qa_stack) as page:
        context = page.context
        page.goto("/")  # a shopper of their own first
        leave_after(page, 2, SNEAKERS)  # each beacon's answer in before the next page: the
        leave_after(page, 2, AERO)  # cookie then only changes when the test says so
        leave_after(page, 2, "about:blank")  # leaving the page saves its dwell in the nudge_dw cookie
        visitor = visitor_of(context)
        key = profile_key(visitor)
        wait_until(lambda: decode_profile(kv_value(qa_stack, key)) is not None, "the visitor's KV profile")
        stored = kv_value(qa_stack, key)
        own = nudge_cookies(context)
        assert sorted(own) == ["nudge", "nudge_dw"]
        before = settled(browser, qa_stack)  # the shopper's own events are in

        page.goto(link)  # lands on / (the CLI's default --path)
        expect(page.locator(MODAL)).to_be_visible()  # on the home page, which is not one of its pages
        for path in (SNEAKERS, COURT, TRAIL):
            page.goto(path)
            expect(page.locator(MODAL)).to_be_visible()
        page.locator(MODAL).get_by_role("button", name="No thanks").click()
        with page.expect_response(lambda r: "/cart/add" in r.url) as added:
            page.locator("[data-testid=add-to-cart]").click()
        assert added.value.status == 200

        assert nudge_cookies(context) == {**own, "nudge_preview": preview_cookie(link)}
        marker = marker_visit(browser, qa_stack)
        assert {e["blobs"][4] for e in events(qa_stack)[before:]} == {marker}
        assert kv_value(qa_stack, key) == stored

        # ?end=1 stops the preview: the popup is gone and the shopper's own visit goes on from
        # where it was (three pages), as if the preview had never happened.
        response = page.goto("/_nudge/preview?end=1")
        assert response is not None and response.status == 200 and urlsplit(page.url).path == "/"
        assert "nudge_preview" not in cookie_names(context)
        page.goto(SNEAKERS)
        expect(page.locator(MODAL)).to_have_count(0)
        expect(page.get_by_text("Preview of")).to_have_count(0)
        session = session_of(context)
        assert session is not None and session.visitor_id == visitor and session.pages == 5
        assert session.cart == {}  # the add to cart made while previewing was not counted


def test_expired_or_tampered_preview_link_is_refused_and_shows_nothing(browser: Browser, qa_stack: Stack) -> None:
    token = preview_cookie(preview_link(qa_stack, STORY, "--path", SNEAKERS))
    payload, _, signature = token.partition(".")
    tampered = f"{payload[:4]}{'A' if payload[4] != 'A' else 'B'}{payload[5:]}.{signature}"
    # Minted as the CLI mints them, two hours ago for one hour.
    expired = PreviewTokens(Signer([SECRET.encode()], "preview")).mint(STORY, 0, int(time.time()) - 7200, hours=1)
    with clocked_page(browser, qa_stack) as page:
        for bad in (tampered, expired):
            response = page.goto(f"/_nudge/preview?t={quote(bad, safe='')}&path={SNEAKERS}")
            assert response is not None and response.status == 403
            assert "invalid or has expired" in response.text()
            assert "nudge_preview" not in cookie_names(page.context)
            page.goto(SNEAKERS)
            expect(page.locator(MODAL)).to_have_count(0)
            expect(page.get_by_text("Preview of")).to_have_count(0)


# -- explain --------------------------------------------------------------------------------------


def test_explain_lists_the_visitors_attributes_and_why_each_rule_fired_or_not(browser: Browser,
                                                                              qa_stack: Stack) -> None:
    with clocked_page(browser, qa_stack) as page:
        context = page.context
        page.goto(SNEAKERS)
        page.goto(AERO)
        page.goto(COURT)
        page.clock.fast_forward("01:00")  # a minute on the second pair
        page.goto("/")

        response = page.goto(explain_url(SNEAKERS))
        assert response is not None and response.status == 200
        assert response.headers["cache-control"] == "no-store"
        expect(page.get_by_role("heading", name="nudge explain")).to_be_visible()
        expect(page.locator("body")).to_contain_text(f"Page {SNEAKERS}, visitor: tracked")
        # the visitor attributes, as the rules see them (the next <pre> says where the cart figures come from)
        attributes = json.loads(page.locator("h2:has-text('Visitor attributes') + pre").inner_text())
        expect(page.locator("h2:has-text('Where the cart figures come from') + pre")).not_to_be_empty()
        sneakers = attributes["category"]["sneakers"]
        assert sneakers["products_viewed"] == 2 and sneakers["views"] == 2  # the explained page counts as a view
        assert 60 <= sneakers["dwell_seconds"] < 70
        assert attributes["page"] == {"type": "category", "path": SNEAKERS, "category": "sneakers", "product": None}
        assert attributes["session"]["pages"] == 5 and attributes["products"]["recent"][:2] == ["court-classic",
                                                                                               "aero-runner"]

        story = row(page, STORY)
        expect(story.locator("td").first).to_have_text("not shown")
        expect(story.locator("td").last).to_contain_text("condition: false")
        expect(story.locator("li")).to_have_text([
            f'category.sneakers.dwell_seconds: wants {{"$gte": 300}}, visitor has {sneakers["dwell_seconds"]}',
            'category.sneakers.products_viewed: wants {"$gte": 3}, visitor has 2',
        ])  # cart.items = 0 holds, so it is not listed
        expect(row(page, "boots-fit-guide").locator("li")).to_have_text(
            ['page.category: wants "boots", visitor has "sneakers"'])
        expect(row(page, "welcome-back-hero")).to_contain_text("page: a category page is not one of its pages")
        expect(row(page, "cart-reminder")).to_contain_text("trigger: cannot fire on this page (cart empty")
        expect(page.get_by_role("rowheader")).to_have_text(RULE_IDS)  # every rule, matched or not
        expect(page.locator("tbody tr.shown")).to_have_count(0)
        # Explaining reads, never writes: the explained page view was simulated on a copy.
        assert "set-cookie" not in response.headers
        session = session_of(context)
        assert session is not None and session.pages == 4

        # Where rules do match: recommendations on a product page, the fit guide on boots.
        page.goto(explain_url(AERO))
        expect(row(page, RECS).locator("td")).to_have_text(["shown", "shown on page load"])
        page.goto(explain_url("/collections/boots?sort=price"))  # a URL as copied, query and all
        expect(row(page, "boots-fit-guide").locator("td")).to_have_text(["shown", "rendered hidden until time on page"])
        search = explain_json(page, "/search?q=Trail+Shoes")["attributes"]
        assert search["page"]["type"] == "search" and search["session"]["searches"] == ["trail shoes"]

        # The story's popup, shown and dismissed: from now on its cap is the reason.
        page.goto(TRAIL)
        page.clock.fast_forward("04:05")
        move_to_leave(page)
        expect(page.locator(MODAL)).to_be_visible()
        page.locator(MODAL).get_by_role("button", name="No thanks").click()
        wait_until(lambda: key32(STORY) in getattr(session_of(context), "closed", []),
                   "the dismiss beacon's answer (the session cookie closes the rule)")
        data = explain_json(page, SNEAKERS)
        assert data["visitor"] == "tracked" and data["path"] == SNEAKERS
        assert data["attributes"]["category"]["sneakers"]["products_viewed"] == 3
        assert data["attributes"]["category"]["sneakers"]["dwell_seconds"] >= 300
        story_now = outcomes(data)[STORY]
        assert story_now == {"rule": STORY, "outcome": "not shown",
                             "reason": "cap: clicked or dismissed in this visit", "failing": []}
        assert not [r for r in data["rules"] if r["outcome"] == "held out"]  # no rule in rules/ has a holdout


def test_explain_with_a_wrong_or_missing_token_is_refused(browser: Browser, qa_stack: Stack) -> None:
    with clocked_page(browser, qa_stack) as page:
        page.goto(SNEAKERS)
        for token in ("wrong", "", TOKEN.upper()):
            response = page.goto(explain_url(SNEAKERS, token=token))
            assert response is not None and response.status == 403
            assert response.headers["cache-control"] == "no-store"
            assert response.json() == {"error": "wrong or missing token"}  # no attribute, no rule


# -- the HTML report ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def holdout_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rules/ with a 50% holdout on the recommendations, so the report has lift to measure."""
    directory = tmp_path_factory.mktemp("rules-holdout")
    for source in (REPO_ROOT / "rules").glob("*.toml"):
        shutil.copy(source, directory / source.name)
    recs = directory / f"{RECS}.toml"
    text = recs.read_text(encoding="utf-8")
    marked = text.replace('pages = ["product", "cart"]\n', 'pages = ["product", "cart"]\nholdout = 50\n', 1)
    assert marked != text
    recs.write_text(marked, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def report_stack(tmp_path_factory: pytest.TempPathFactory, holdout_rules: Path) -> Iterator[Stack]:
    """A stack serving those rules, published to its KV with `nudge rules publish` before it starts."""
    state = tmp_path_factory.mktemp("kv-report")
    published = nudge_cli("rules", "publish", "--dir", str(holdout_rules), "--persist-to", str(state))
    assert published.returncode == 0, published.stderr
    with shop_behind_edge(state, "--var", f"NUDGE_EXPLAIN_TOKEN:{TOKEN}") as s:
        yield s


def serving_published_rules(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(base_url=stack.edge)
    try:
        def live() -> bool:
            return str(context.request.get("/_nudge/health").json()["rules_version"]) != "bundled"
        wait_until(live, "the edge to load the published rules")
    finally:
        context.close()


def buy(page: Page, stack: Stack, product: str) -> None:
    """Buys `product` through the shop's checkout; waits for the conversion the Worker records."""
    visitor = visitor_of(page.context)
    page.goto(product)
    with page.expect_response(lambda r: "/cart/add" in r.url and r.request.method == "POST"):
        page.locator("[data-testid=add-to-cart]").click()
    page.goto("/cart")  # where the free-shipping badge and the sizing help are decided
    page.goto("/checkout")
    page.locator("[data-testid=place-order]").click()
    expect(page.locator("[data-testid=order-id]")).to_be_visible()
    wait_until(lambda: any(e["blobs"][0] == "conversion" for e in events_of(stack, visitor)), "the conversion")


def keep_local_events(stack: Stack) -> None:
    """The edge's output through scripts/local_events.py, as `make dev` pipes it: the points the
    Worker echoed land in <persist-to>/analytics/nudge_events.jsonl, where `nudge report` reads."""
    target = stack.state / "analytics" / "nudge_events.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "local_events.py"), str(target)],
                          input=stack.process.output(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    kept = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert kept == events(stack)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


PLOTTED = """svg => [...svg.querySelectorAll('g[id$="-axes_1"], g[id$="-axes_2"]')].map(axes => ({
    axes: axes.id.replace(/^.*-/, ''),
    items: [...axes.children].filter(g => /LineCollection|line2d|PolyCollection/.test(g.id))
        .flatMap(g => [...g.querySelectorAll('path, use')].filter(e => !e.closest('defs')).map(e => {
            const box = e.getBoundingClientRect();
            return {group: g.id.replace(/^.*-/, ''), tag: e.tagName, width: box.width, height: box.height,
                    stroke: getComputedStyle(e).stroke, fill: getComputedStyle(e).fill};
        })),
}))"""
GREY, BLUE = "rgb(107, 114, 128)", "rgb(37, 99, 235)"  # holdout, variant 0 (report/html.py's colors)


def test_html_report_opens_in_chromium_and_charts_every_rule_with_data(browser: Browser, report_stack: Stack,
                                                                       holdout_rules: Path) -> None:
    serving_published_rules(browser, report_stack)
    arms: dict[str, list[str]] = {"holdout": [], "variant 0": []}
    while min(len(v) for v in arms.values()) < 2 and sum(len(v) for v in arms.values()) < 40:
        context = browser.new_context(base_url=report_stack.edge)
        try:
            page = context.new_page()
            page.goto(AERO)
            visitor = visitor_of(context)
            shown = page.locator("#nudge-recommendations").count() == 1
            assert shown != in_holdout(RECS, visitor, 50)  # the holdout never sees it
            arm = "variant 0" if shown else "holdout"
            arms[arm].append(visitor)
            if len(arms[arm]) == 1:  # the first of each arm buys something
                buy(page, report_stack, SOCKS)
            if len(arms[arm]) == 2:  # explain agrees with what the browser got
                verdict = outcomes(explain_json(page, AERO))[RECS]
                assert verdict["outcome"] == ("shown" if shown else "held out"), verdict
                if not shown:
                    assert verdict["reason"] == "in the 50% holdout (control group): measured, never shown"
        finally:
            context.close()
    visitors = [v for group in arms.values() for v in group]
    wait_until(lambda: {e["blobs"][4] for e in events(report_stack)
                        if e["blobs"][:2] == ["exposure", RECS]} == set(visitors), "every visitor's exposure")
    with_data = sorted({e["blobs"][1] for e in events(report_stack) if e["blobs"][0] == "exposure"})
    assert {RECS, "free-shipping-badge", "cart-idle-help"} <= set(with_data)  # with and without a holdout

    RESULTS.mkdir(exist_ok=True)
    html_file = RESULTS / "qa-report.html"
    html_file.unlink(missing_ok=True)
    keep_local_events(report_stack)
    done = nudge_cli("report", "--persist-to", str(report_stack.state), "--rules", str(holdout_rules),
                     "--html", str(html_file))
    assert done.returncode == 0, done.stderr
    assert f"wrote {html_file}" in done.stdout

    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        problems: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html_file.as_uri())
        expect(page).to_have_title("nudge report")
        expect(page.get_by_role("heading", level=2)).to_have_text(RULE_IDS)  # a section per configured rule

        for rule in with_data:
            section = page.locator("section").filter(has=page.get_by_role("heading", name=rule, exact=True))
            table_arms = section.locator("tbody tr td:first-child").all_inner_texts()
            seen = sorted({"holdout" if e["blobs"][3] == "holdout" else f"variant {e['blobs'][2]}"
                           for e in events(report_stack) if e["blobs"][:2] == ["exposure", rule]})
            assert sorted(table_arms) == seen, rule
            chart = section.locator("figure svg")
            expect(chart).to_be_visible()
            box = chart.bounding_box()
            assert box is not None and box["width"] > 600 and box["height"] > 150
            axes = {a["axes"]: a["items"] for a in chart.evaluate(PLOTTED)}
            # Per arm, an interval bar (a vertical line: height, no width) and a round marker.
            bars = [i for i in axes["axes_1"] if i["group"].startswith("LineCollection")]
            markers = [i for i in axes["axes_1"] if i["tag"] == "use" and i["width"] > 3 and i["height"] > 3]
            assert len(bars) == len(seen) and all(b["height"] > 1 for b in bars), (rule, bars)
            assert len(markers) == len(seen), (rule, axes["axes_1"])

        recs = page.locator("section").filter(has=page.get_by_role("heading", name=RECS, exact=True))
        expect(recs).to_contain_text("(holdout 50%)")
        cells = {r[0]: r for r in (tr.locator("td").all_inner_texts() for tr in recs.locator("tbody tr").all())}
        assert set(cells) == {"holdout", "variant 0"}
        for arm, members in arms.items():
            assert cells[arm][1] == str(len(members)), cells[arm]  # visitors exposed
            assert cells[arm][4] == "1", cells[arm]  # the one buyer converted
        assert cells["holdout"][2] == "0"  # impressions: the holdout never saw it
        expect(recs.locator("li")).to_contain_text(["not enough data yet"])
        # Both arms in the rates chart (grey holdout, blue variant) and the lift over time beside it.
        axes = {a["axes"]: a["items"] for a in recs.locator("figure svg").evaluate(PLOTTED)}
        assert {b["stroke"] for b in axes["axes_1"] if b["group"].startswith("LineCollection")} == {GREY, BLUE}
        lift = [i for i in axes["axes_2"] if BLUE in (i["stroke"], i["fill"])]
        assert [i for i in lift if i["tag"] == "use" and i["width"] > 3 and i["height"] > 3], lift  # today's point
        assert [i for i in lift if "Collection" in i["group"] and i["height"] > 1
                and (i["width"] > 1 or i["stroke"] == BLUE)], lift  # its interval: a band across days, or a bar

        assert problems == []
        assert requests == [html_file.as_uri()]  # self-contained: nothing else fetched
        shot = RESULTS / "qa-report.png"
        shot.unlink(missing_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        width, height = png_size(shot)
        assert width == 1100 and height > 900 and shot.stat().st_size > 20_000
    finally:
        page.close()
