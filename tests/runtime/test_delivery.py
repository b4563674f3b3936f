"""Delivery through the Worker in Pyodide: slots, recommendations, price rewriting, CSP and the
discount budget, against the scriptable origin and the repo's own rules."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from nudge.offers import OfferTokens, Redeemed
from nudge.rules.bucketing import in_holdout
from nudge.rules.load import load_ruleset
from nudge.rules.preview import PreviewTokens
from nudge.signing import Signer
from nudge_tools.processes import REPO_ROOT, events
from nudge_tools.traffic import HONOURED, publish, rules_with_shop
from tests.runtime.test_worker import CODEC, SECRET, Edge, cached_urls, edge_in_front_of_origin, wait_for_rules

pytestmark = pytest.mark.runtime
KEYS = [SECRET.encode()]
OFFERS = OfferTokens(Signer(KEYS, "offer-token"), Signer(KEYS, "offer-cookie"))
PRODUCT = "/collections/sneakers/products/aero-runner"
QA_TOKEN = "qa-token-123"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """The repo's rules, but for a shop whose cart charges what X-Nudge-Offer says (the scriptable
    origin prices no page itself): nudge shows the discount on the prices the page marks."""
    kv_dir = tmp_path_factory.mktemp("kv")
    publish(rules_with_shop(tmp_path_factory.mktemp("rules"), HONOURED), kv_dir)
    with edge_in_front_of_origin(kv_dir, "--var", f"NUDGE_EXPLAIN_TOKEN:{QA_TOKEN}") as e:
        yield e


@pytest.fixture(scope="module")
def publishing_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """An edge looking for published rules every second, for the tests that publish a rule set of
    their own and wait until it is served (each sets every rule it needs)."""
    with edge_in_front_of_origin(tmp_path_factory.mktemp("kv"), "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e:
        yield e


def offer_cookie(category: str = "sneakers", percent: int = 10) -> str:
    redeemed = Redeemed("sneakers-exit-intent", "SNEAKERS10", percent, category, int(time.time()) + 3600)
    return f"nudge_offer={OFFERS.cookie(redeemed)}"


def test_a_targeted_slot_is_filled_and_the_others_keep_the_sites_content(edge: Edge) -> None:
    with edge.client() as c:
        page = c.get(PRODUCT).text
    recs = page[page.index('data-nudge-slot="recommendations"'):page.index('data-nudge-slot="nobody')]
    assert 'class="nudge-recs"' in recs and "site fallback" not in recs
    # aero-runner's accessories from rules/catalog.toml, never the product on screen
    assert "/products/merino-crew-socks" in recs and "/products/aero-runner" not in recs
    assert '<div data-nudge-slot="nobody-targets-this"><p>site content stays</p></div>' in page


def test_prices_the_page_marks_show_the_redeemed_discount(edge: Edge) -> None:
    with edge.client() as c:
        page = c.get("/collections/sneakers", headers={"cookie": offer_cookie()}).text
    assert ('<s class="nudge-was"><span class="nudge-sr">was </span>$129.00</s>'
            '<span class="nudge-now">$116.10</span>') in page
    # microdata: the visible text and its content attribute agree on the new price
    assert 'itemprop="price" content="80.10" data-nudge-priced=""><s class="nudge-was">' in page
    assert '<meta itemprop="price" content="89.00">' in page  # nothing visible to rewrite
    assert '<span data-nudge-price="call us">call us</span>' in page  # not a price: left alone
    assert "SNEAKERS10" in page  # and the applied-offer banner
    # a price the page says belongs to another category keeps its own price
    assert '<span data-nudge-price="24.00" data-nudge-category="accessories">$24.00</span>' in page


def test_prices_marked_with_the_offers_category_are_rewritten_on_any_page(edge: Edge) -> None:
    with edge.client() as c:
        page = c.get("/collections/boots", headers={"cookie": offer_cookie("accessories")}).text
    assert '<span data-nudge-price="24.00" data-nudge-category="accessories" data-nudge-priced="">' in page
    assert '<p class="price" data-nudge-price="129.00">$129.00</p>' in page  # unmarked, on a boots page


@pytest.mark.parametrize("query, cookie", [
    ("?applied=1", offer_cookie()),  # the shop priced the page itself
    ("", offer_cookie("boots")),  # the offer is for another category
    ("", ""),  # no offer
])
def test_prices_are_left_alone_when_the_offer_does_not_apply(edge: Edge, query: str, cookie: str) -> None:
    with edge.client() as c:
        page = c.get(f"/collections/sneakers{query}", headers={"cookie": cookie} if cookie else {}).text
    assert '<p class="price" data-nudge-price="129.00">$129.00</p>' in page and "class=\"nudge-was\"" not in page


def test_personalized_pages_vary_on_cookie_and_stay_private(edge: Edge) -> None:
    with edge.client() as c:
        r = c.get(PRODUCT)
    assert r.headers["cache-control"] == "private, no-store" and "Cookie" in r.headers["vary"]


def test_a_csp_nonce_is_reused_for_our_style_and_script(edge: Edge) -> None:
    policy = "default-src 'self'; script-src 'nonce-abc123' 'strict-dynamic'; style-src 'nonce-abc123'"
    with edge.client() as c:
        page = c.get(f"{PRODUCT}?csp={quote(policy)}").text
    assert '<style id="nudge-style" nonce="abc123">' in page
    assert 'defer nonce="abc123"></script>' in page and 'class="nudge-recs"' in page


def test_a_csp_without_inline_styles_gets_our_stylesheet_from_our_own_path(edge: Edge) -> None:
    policy = "default-src 'self'"
    with edge.client() as c:
        page = c.get(f"{PRODUCT}?csp={quote(policy)}").text
        (href,) = [part.split('"')[0] for part in page.split('<link rel="stylesheet" id="nudge-style" href="')[1:]]
        css = c.get(href)
    assert "<style" not in page and 'class="nudge-recs"' in page
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and ".nudge-recs" in css.text


def test_a_csp_that_blocks_our_script_gets_the_page_untouched_but_the_visit_counts(edge: Edge) -> None:
    policy = "script-src 'sha256-AAAA'; style-src 'unsafe-inline'"
    with edge.client() as c:
        r = c.get(f"{PRODUCT}?csp={quote(policy)}")
    assert "nudge-" not in r.text.replace("data-nudge-", "") and "site fallback" in r.text
    assert any(c.startswith("nudge=") for c in r.headers.get_list("set-cookie"))


def test_the_daily_discount_budget_is_enforced_at_redemption(publishing_edge: Edge, tmp_path: Path) -> None:
    e, rules_dir = publishing_edge, tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    rule_file = rules_dir / "sneakers-exit-intent.toml"
    rule_file.write_text(rule_file.read_text().replace('percent = 10\n', 'percent = 10\nmax_per_day = 1\n'))
    version = publish(rules_dir, e.kv_dir)
    rule = load_ruleset({p.name: p.read_text() for p in rules_dir.glob("*.toml")}).rule("sneakers-exit-intent")
    assert rule is not None
    with e.client() as c:
        wait_for_rules(e, c, version)

    def redeem() -> httpx.Response:
        with httpx.Client(base_url=e.url, timeout=30) as shopper:
            shopper.get("/")
            visitor = CODEC.decode(shopper.cookies["nudge"]).visitor_id
            token = OFFERS.mint(rule, visitor, int(time.time()))
            return shopper.get(f"/_nudge/redeem?t={quote(token)}")

    first = redeem()
    assert first.status_code == 303 and any(c.startswith("nudge_offer=") for c in first.headers.get_list("set-cookie"))
    second = redeem()  # no waiting: the ledger (a Durable Object) counted the first before answering it
    assert second.status_code == 303 and second.headers["location"] == "/collections/sneakers"
    cookies = second.headers.get_list("set-cookie")
    assert "nudge_msg=offer-ended" in "; ".join(cookies) and not any(c.startswith("nudge_offer=") for c in cookies)


def origin_hits(edge: Edge, path: str) -> int:
    return sum(1 for seen in edge.seen if seen[":path"] == path)


def test_shareable_base_html_is_cached_at_the_edge_and_personalized_per_request(edge: Edge) -> None:
    path = f"{PRODUCT}?cache=public,%20s-maxage=60&n={time.monotonic_ns()}"
    visitors = []
    for i in range(3):
        with edge.client() as c:  # a new visitor each time: no cookies shared
            r = c.get(path)
            assert 'class="nudge-recs"' in r.text and 'id="nudge-config"' in r.text
            assert r.headers["cache-control"] == "private, no-store"  # what the browser gets
            visitors.append(CODEC.decode(c.cookies["nudge"]).visitor_id)
        if i == 0:  # the cache write happens after the response (waitUntil)
            deadline = time.monotonic() + 10
            while edge.origin + path not in cached_urls(edge.kv_dir):
                assert time.monotonic() < deadline, (cached_urls(edge.kv_dir), edge.process.output()[-2000:])
                time.sleep(0.05)
    assert origin_hits(edge, path) == 1 and len(set(visitors)) == 3


@pytest.mark.parametrize("query", [
    "cache=private,%20max-age=60",  # the origin keeps it to this visitor
    "cache=max-age=60",  # not explicitly shared
    "cache=public,%20s-maxage=60&cookie=1",  # a response that sets a cookie is someone's
    "",  # no Cache-Control
])
def test_html_the_origin_does_not_share_always_comes_from_the_origin(edge: Edge, query: str) -> None:
    path = f"{PRODUCT}?{query}&n={time.monotonic_ns()}"
    with edge.client() as c:
        for _ in range(2):
            assert c.get(path).status_code == 200
            time.sleep(0.2)
    assert origin_hits(edge, path) == 2


def test_a_visitor_with_an_offer_bypasses_the_edge_cache(edge: Edge) -> None:
    path = f"/collections/sneakers?cache=public,%20s-maxage=60&n={time.monotonic_ns()}"
    with edge.client() as c:
        c.get(path)
        time.sleep(0.2)
        r = c.get(path, headers={"cookie": offer_cookie()})
    assert origin_hits(edge, path) == 2 and "$116.10" in r.text


def page_log_lines(edge: Edge) -> list[dict[str, object]]:
    return [json.loads(line) for line in edge.process.output().splitlines() if line.startswith('{"nudge":"page"')]


def test_rewritten_pages_carry_server_timing_and_one_json_log_line(edge: Edge) -> None:
    # The edge is shared and a page's line is printed once its body has streamed: an earlier
    # test's (category) line may still be on its way, so wait for this request's product line.
    before = len(page_log_lines(edge))
    with edge.client() as c:
        r = c.get(f"{PRODUCT}?n={time.monotonic_ns()}")
    timing = r.headers["server-timing"]
    assert timing.startswith("nudge;dur=") and 'desc="nudge before body"' in timing
    before_body = float(timing.split("dur=")[1].split(";")[0])
    deadline = time.monotonic() + 5
    while not any(line["page"] == "product" for line in page_log_lines(edge)[before:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in page_log_lines(edge)[before:] if line["page"] == "product"]
    assert len(lines) == 1 and "recommendations" in lines[0]["slots"] and lines[0]["ended"] is True
    # the total includes the handler calls made while the body streamed, after the header was sent
    # (head, body, </body>, the slot, the document's end: all five counted). Its time can only grow,
    # but not always visibly: workerd's clock moves in whole milliseconds and only between I/O
    # (Cloudflare's timer mitigation), so sub-millisecond handlers may add 0.
    assert lines[0]["handlers"] == 5 and float(str(lines[0]["ms"])) >= before_body


def test_explain_lists_every_rule_with_its_reason_for_this_browser(edge: Edge) -> None:
    with edge.client() as c:
        c.get("/collections/sneakers")
        assert c.get("/_nudge/explain?token=nope").status_code == 403
        r = c.get(f"/_nudge/explain?token={QA_TOKEN}&path=/collections/sneakers")
        data = c.get(f"/_nudge/explain?token={QA_TOKEN}&path=/collections/sneakers&format=json").json()
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store" and "<h1>nudge explain</h1>" in r.text
    story = next(x for x in data["rules"] if x["rule"] == "sneakers-exit-intent")
    assert story["reason"] == "condition: false" and any("dwell_seconds" in f for f in story["failing"])
    assert data["visitor"] == "tracked" and data["attributes"]["session"]["pages"] == 2  # 1 real + the simulated one


def test_a_preview_link_shows_the_rule_in_this_browser_and_records_nothing(edge: Edge) -> None:
    token = PreviewTokens(Signer(KEYS, "preview")).mint("sneakers-exit-intent", 0, int(time.time()), 1)
    with edge.client() as c:
        start = c.get(f"/_nudge/preview?t={quote(token)}&path=/collections/boots")
        assert start.status_code == 303 and start.headers["location"] == "/collections/boots"
        page = c.get("/collections/boots")
        forged = c.get("/_nudge/preview?t=forged")
    assert 'data-nudge-rule="sneakers-exit-intent"' in page.text and "Preview of sneakers-exit-intent" in page.text
    assert not any(h.startswith("nudge=") for h in page.headers.get_list("set-cookie"))
    assert forged.status_code == 403


def read_events(edge: Edge, visitor: str, kinds: int, seconds: float = 10) -> list[dict[str, object]]:
    """This visitor's Analytics Engine data points (echoed by the Worker), once `kinds` kinds are there."""
    deadline = time.monotonic() + seconds
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        rows = [r for r in events(edge.process) if r["blobs"][4] == visitor]  # type: ignore[index]
        if len({r["blobs"][0] for r in rows}) >= kinds:  # type: ignore[index]
            break
        time.sleep(0.05)
    return rows


def test_every_event_kind_is_written_server_side(edge: Edge) -> None:
    """Issue 15: a click closes the nudge for the visit (a dismiss after it does not count: another
    visitor dismisses); the conversion is the order the shop's origin confirms (X-Nudge-Order), the
    browser's purchase beacon only an unverified one."""
    with edge.client() as c:
        c.get(PRODUCT)
        visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        events = [{"type": "nudge_clicked", "rule": "recommendations"},
                  {"type": "purchase", "items": [{"id": "SNK-001", "quantity": 1}], "value": 129.0}]
        assert c.post("/_nudge/beacon", json={"events": events}).status_code == 204
        assert "x-nudge-order" not in c.get("/checkout/thank-you?order=EVT-1&value=129.00").headers
    with edge.client() as other:
        other.get(PRODUCT)
        dismisser = CODEC.decode(other.cookies["nudge"]).visitor_id
        assert other.post("/_nudge/beacon", json={"events": [
            {"type": "nudge_dismissed", "rule": "recommendations"}]}).status_code == 204
    rows = read_events(edge, visitor, 5)
    kinds = {r["blobs"][0]: r for r in rows}  # type: ignore[index]
    assert set(kinds) == {"exposure", "impression", "click", "conversion_unverified", "conversion"}
    assert kinds["exposure"]["blobs"][1:4] == ["recommendations", "0", "treatment"]  # type: ignore[index]
    assert kinds["impression"]["indexes"] == ["recommendations"] and kinds["conversion"]["doubles"][0] == 129.0  # type: ignore[index]
    assert kinds["conversion_unverified"]["doubles"][0] == 129.0  # type: ignore[index]
    assert {r["blobs"][0] for r in read_events(edge, dismisser, 3)} == {"exposure", "impression", "dismiss"}  # type: ignore[index]


HOLDOUT_RULE = """
id = "boots-banner"
pages = ["category"]
holdout = 50

[when]
"page.category" = "boots"

[action]
kind = "banner"
title = "Boots week"
body = "Every boot ships free."
"""


def test_holdout_visitors_never_see_the_nudge_but_are_counted(publishing_edge: Edge, tmp_path: Path) -> None:
    e, rules_dir = publishing_edge, tmp_path / "rules"
    rules_dir.mkdir()
    for config in ("pages.toml", "site.toml", "catalog.toml"):  # the site's settings, none of its rules
        shutil.copy(REPO_ROOT / "rules" / config, rules_dir)
    (rules_dir / "boots-banner.toml").write_text(HOLDOUT_RULE)
    version = publish(rules_dir, e.kv_dir)
    seen: dict[str, list[tuple[str, bool]]] = {"holdout": [], "treatment": []}
    with e.client() as c:
        wait_for_rules(e, c, version)
    # 24 fresh visitors: both groups are reached unless the 50/50 hash is broken (p = 2 * 0.5**24).
    for _ in range(24):
        with e.client() as c:
            html = c.get("/collections/boots").text
            visitor = CODEC.decode(c.cookies["nudge"]).visitor_id
        group = "holdout" if in_holdout("boots-banner", visitor, 50) else "treatment"
        seen[group].append((visitor, 'data-nudge-rule="boots-banner"' in html))
    assert seen["holdout"] and seen["treatment"]
    assert not any(shown for _, shown in seen["holdout"])
    assert all(shown for _, shown in seen["treatment"])
    for group, visitors in seen.items():
        for visitor, _ in visitors:
            rows = read_events(e, visitor, 2 if group == "treatment" else 1)
            kinds = sorted(r["blobs"][0] for r in rows)  # type: ignore[index]
            assert kinds == (["exposure", "impression"] if group == "treatment" else ["exposure"])
            exposure = next(r for r in rows if r["blobs"][0] == "exposure")  # type: ignore[index]
            assert exposure["blobs"][1:4] == ["boots-banner", "0", group]  # type: ignore[index]


# -- how the cart gets the offer: one edge, the rules republished per mode --------------------------


def redeem_as_new_shopper(edge: Edge, rule_files: Path) -> tuple[httpx.Response, dict[str, str]]:
    """A new shopper's button click (no redirect followed) and their cookies after it."""
    rule = load_ruleset({p.name: p.read_text() for p in rule_files.glob("*.toml")}).rule("sneakers-exit-intent")
    assert rule is not None
    with httpx.Client(base_url=edge.url, timeout=30) as shopper:
        shopper.get("/")
        token = OFFERS.mint(rule, CODEC.decode(shopper.cookies["nudge"]).visitor_id, int(time.time()))
        reply = shopper.get(f"/_nudge/redeem?t={quote(token)}")
        return reply, dict(shopper.cookies)


def sneakers_page(edge: Edge, cookies: dict[str, str], query: str = "") -> tuple[str, dict[str, str]]:
    """The sneakers collection for this shopper, and the request headers the origin got for it."""
    path = f"/collections/sneakers?n={time.monotonic_ns()}{query}"
    with httpx.Client(base_url=edge.url, timeout=30, cookies=cookies) as c:
        page = c.get(path).text
    return page, next(seen for seen in edge.seen if seen[":path"] == path)


def test_each_apply_mode_says_only_what_the_cart_charges(tmp_path: Path) -> None:
    kv_dir = tmp_path / "kv"
    code = rules_with_shop(tmp_path / "code", "")
    url = rules_with_shop(tmp_path / "url",
                          'offer_apply = "url"\noffer_apply_url = "/discount/{code}?redirect={redirect}"',
                          "max_per_day = 1\n")
    header = rules_with_shop(tmp_path / "header", 'offer_apply = "header"')
    with edge_in_front_of_origin(kv_dir, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as e, e.client() as c:
        wait_for_rules(e, c, publish(url, kv_dir))  # through the platform's own apply link (first: a
        # budget of one a day, which no other mode's redemption has spent yet)
        reply, cookies = redeem_as_new_shopper(e, url)
        assert reply.status_code == 303
        assert reply.headers["location"] == "/discount/SNEAKERS10?redirect=%2Fcollections%2Fsneakers"
        page, sent = sneakers_page(e, cookies)
        assert "code <strong>SNEAKERS10</strong> added to your cart" in page
        assert "nudge-now" not in page and "x-nudge-offer" not in sent
        refused, cookies = redeem_as_new_shopper(e, url)  # the ledger answers before any apply link
        assert refused.headers["location"] == "/collections/sneakers" and "nudge_offer" not in cookies
        assert "nudge_msg=offer-ended" in "; ".join(refused.headers.get_list("set-cookie"))

        wait_for_rules(e, c, publish(code, kv_dir))  # the default: the code, to use at checkout
        reply, cookies = redeem_as_new_shopper(e, code)
        assert reply.status_code == 303 and reply.headers["location"] == "/collections/sneakers"
        page, sent = sneakers_page(e, cookies)
        assert "10% off sneakers: use code <strong>SNEAKERS10</strong> at checkout" in page
        assert "applied" not in page and "nudge-now" not in page and "x-nudge-offer" not in sent

        wait_for_rules(e, c, publish(header, kv_dir))  # the shop reads X-Nudge-Offer
        reply, cookies = redeem_as_new_shopper(e, header)
        page, sent = sneakers_page(e, cookies)
        assert sent["x-nudge-offer"].startswith("code=SNEAKERS10; percent=10; category=sneakers")
        assert "use code <strong>SNEAKERS10</strong> at checkout" in page and "applied" not in page
        assert "nudge-now" not in page  # the shop did not say it priced the page, nor that its cart does
        page, _ = sneakers_page(e, cookies, "&applied=1")
        assert "10% off sneakers applied: code <strong>SNEAKERS10</strong>" in page and "nudge-now" not in page
