"""axe-core (npm, pinned) on every rendered nudge kind: no violations inside nudge's markup."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from nudge_tools.processes import REPO_ROOT

from .test_sneakers_story import MODAL, browse_pairs, move_to_leave

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Page, selector: str) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async (sel) => await axe.run({ include: [[sel]] }, { resultTypes: ['violations'] })", selector)
    return [{"id": v["id"], "nodes": [n["html"][:120] for n in v["nodes"]]} for v in result["violations"]]


def test_modal_has_no_violations(page: Page) -> None:
    browse_pairs(page, 3, "05:01")
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()
    assert axe_violations(page, MODAL) == []
    page.locator(MODAL).get_by_role("link").click()
    expect(page.locator("#nudge-offer-applied")).to_be_visible()
    assert axe_violations(page, "#nudge-offer-applied") == []


def test_banners_have_no_violations(page: Page) -> None:
    page.goto("/collections/boots")
    page.clock.fast_forward("00:21")
    expect(page.locator("#nudge-boots-fit-guide")).to_be_visible()
    assert axe_violations(page, "#nudge-boots-fit-guide") == []
    page.goto("/_nudge/redeem?t=forged")
    expect(page.locator("#nudge-notice")).to_be_visible()
    assert axe_violations(page, "#nudge-notice") == []


CLS_OBSERVER = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__shifts.push({value: e.value, recent: e.hadRecentInput});
}).observe({type: 'layout-shift', buffered: true});
"""


def layout_shift(page: Page) -> float:
    return float(page.evaluate("window.__shifts.filter(s => !s.recent).reduce((a, s) => a + s.value, 0)"))


def test_revealing_nudges_shifts_nothing(page: Page) -> None:
    page.add_init_script(CLS_OBSERVER)
    page.goto("/collections/boots")
    page.wait_for_timeout(200)
    before = layout_shift(page)
    page.clock.fast_forward("00:21")
    expect(page.locator("#nudge-boots-fit-guide")).to_be_visible()
    page.wait_for_timeout(200)
    assert layout_shift(page) == before  # the delayed banner floats: CLS from nudges = 0
    browse_pairs(page, 3, "05:01")
    page.wait_for_timeout(200)
    before = layout_shift(page)
    move_to_leave(page)
    expect(page.locator(MODAL)).to_be_visible()
    page.wait_for_timeout(200)
    assert layout_shift(page) == before
