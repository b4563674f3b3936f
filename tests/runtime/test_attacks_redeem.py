"""Attacks on money through the real runtime (issue 15, items 4 and 10): a button token or a
follow-up code redeemed many times at once, a daily budget raced by many shoppers, the ledger
gone, and a follow-up enqueued twice or POSTed twice per attempt.

Redemptions are recorded in the NudgeLedger Durable Object (SQLite-backed, Miniflare's own here):
what the tests look at is what a shopper sees (the 303, the offer cookie or the polite message
cookie), the click points the Worker wrote, and the webhook receiver's requests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from nudge.followups.messages import IssuedCode
from nudge.kv_keys import code_key
from nudge.offers import OFFER_COOKIE
from nudge.rules.load import load_ruleset
from nudge.rules.model import Rule
from nudge_tools.processes import QUICK_BATCH_SECONDS, REPO_ROOT, edge_environment, events
from nudge_tools.traffic import publish
from tests.runtime.test_delivery import OFFERS
from tests.runtime.test_followups import (
    CART_RULE,
    abandon_cart,
    attempts,
    body,
    edge_with_hook,
    next_second,
    wait_settled,
    wait_until,
)
from tests.runtime.test_worker import CODEC, Edge, edge_in_front_of_origin, wait_for_rules

pytestmark = pytest.mark.runtime
RULE = "sneakers-exit-intent"
PARALLEL = 20


def bundled_rule(rule_id: str = RULE) -> Rule:
    rule = load_ruleset({p.name: p.read_text() for p in (REPO_ROOT / "rules").glob("*.toml")}).rule(rule_id)
    assert rule is not None
    return rule


def granted(resp: httpx.Response) -> bool:
    return resp.status_code == 303 and any(c.startswith(f"{OFFER_COOKIE}=")
                                           for c in resp.headers.get_list("set-cookie"))


def message(resp: httpx.Response) -> str | None:
    """The polite message a refused redemption leaves for the next page (nudge_msg), if any."""
    for cookie in resp.headers.get_list("set-cookie"):
        if cookie.startswith("nudge_msg="):
            return cookie.split(";", 1)[0].split("=", 1)[1]
    return None


def at_once(count: int, work: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`count` calls of `work` released together from their own threads."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


def clicks(edge: Edge, rule: str) -> int:
    return sum(1 for p in events(edge.process) if p["blobs"][0] == "click" and p["blobs"][1] == rule)  # type: ignore[index]


def shopper_with_token(edge: Edge, rule: Rule) -> tuple[dict[str, str], str]:
    """A new shopper's cookies (after one page) and a good button token for them."""
    with edge.client() as shopper:
        shopper.get("/")
        cookies = dict(shopper.cookies)
    visitor = CODEC.decode(cookies["nudge"]).visitor_id
    return cookies, OFFERS.mint(rule, visitor, int(time.time()))


def redeem_with(edge: Edge, cookies: dict[str, str], query: str) -> httpx.Response:
    with httpx.Client(base_url=edge.url, timeout=60, cookies=cookies) as client:
        return client.get(f"/_nudge/redeem?{query}")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """The edge the tests share that need no setting or rule set of their own."""
    with edge_in_front_of_origin(tmp_path_factory.mktemp("state")) as e:
        yield e


def test_twenty_parallel_redeems_of_one_token_grant_one_offer(edge: Edge) -> None:
    cookies, token = shopper_with_token(edge, bundled_rule())
    answers = at_once(PARALLEL, lambda _: redeem_with(edge, cookies, f"t={quote(token)}"))
    assert all(a.status_code == 303 and a.headers["location"] == "/collections/sneakers" for a in answers)
    assert sum(granted(a) for a in answers) == 1, [a.headers.get_list("set-cookie") for a in answers]
    assert sorted(str(message(a)) for a in answers if not granted(a)) == ["offer-used"] * (PARALLEL - 1)
    wait_until_true(edge, "the one click point", lambda: clicks(edge, RULE) >= 1)
    again = redeem_with(edge, cookies, f"t={quote(token)}")  # later, without the offer cookie
    assert not granted(again) and message(again) == "offer-used"
    assert clicks(edge, RULE) == 1
    assert "Traceback" not in edge.process.output() and "ledger unavailable" not in edge.process.output()


def wait_until_true(edge: Edge, what: str, check: Callable[[], bool], seconds: float = 15) -> None:
    wait_until(edge, what, lambda: True if check() else None, seconds)


def test_a_daily_budget_of_three_grants_exactly_three_to_many_parallel_shoppers(tmp_path: Path) -> None:
    state, rules_dir = tmp_path / "state", tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", rules_dir)
    rule_file = rules_dir / f"{RULE}.toml"
    rule_file.write_text(rule_file.read_text().replace("percent = 10\n", "percent = 10\nmax_per_day = 3\n"))
    version = publish(rules_dir, state)
    rule = load_ruleset({p.name: p.read_text() for p in rules_dir.glob("*.toml")}).rule(RULE)
    assert rule is not None and rule.offer is not None and rule.offer.max_per_day == 3
    with edge_in_front_of_origin(state, "--var", "NUDGE_RULES_REFRESH_SECONDS:1") as edge:
        with edge.client() as c:
            wait_for_rules(edge, c, version)
        shoppers = [shopper_with_token(edge, rule) for _ in range(PARALLEL)]
        # Each shopper clicks their own button twice at once (the attack that got 21 offers).
        answers = at_once(2 * PARALLEL, lambda i: redeem_with(edge, shoppers[i // 2][0],
                                                              f"t={quote(shoppers[i // 2][1])}"))
        assert sum(granted(a) for a in answers) == 3
        refused = [message(a) for a in answers if not granted(a)]
        assert set(refused) <= {"offer-ended", "offer-used"} and refused.count("offer-ended") >= PARALLEL - 3
        assert all(a.status_code == 303 and a.headers["location"] == "/collections/sneakers" for a in answers)
        honest_cookies, honest_token = shopper_with_token(edge, rule)  # after the refusals: a clear answer
        honest = redeem_with(edge, honest_cookies, f"t={quote(honest_token)}")
        assert honest.status_code == 303 and not granted(honest) and message(honest) == "offer-ended"
        with httpx.Client(base_url=edge.url, timeout=30, cookies=honest_cookies) as client:
            page = client.get("/collections/sneakers", headers={"cookie": "nudge_msg=offer-ended"})
            assert page.status_code == 200
        wait_until_true(edge, "three click points", lambda: clicks(edge, RULE) >= 3)
        assert clicks(edge, RULE) == 3


def test_an_unreachable_ledger_grants_no_offer_and_fails_no_page(tmp_path: Path) -> None:
    with edge_in_front_of_origin(tmp_path / "state", "--var", "NUDGE_LOCAL_LEDGER_FAIL:1") as edge:
        cookies, token = shopper_with_token(edge, bundled_rule())
        refused = redeem_with(edge, cookies, f"t={quote(token)}")
        assert refused.status_code == 303 and refused.headers["location"] == "/collections/sneakers"
        assert not granted(refused) and message(refused) == "offer-unavailable"
        with httpx.Client(base_url=edge.url, timeout=30, cookies=cookies) as client:
            page = client.get("/collections/sneakers")
            assert page.status_code == 200 and 'id="nudge-config"' in page.text
        edge.process.wait_for_output("redemption ledger unavailable, offer refused")  # logs arrive on their own time
        assert clicks(edge, RULE) == 0


def put_code(state: Path, issued: IssuedCode, tmp_path: Path) -> None:
    """A follow-up code in the local KV, as the queue consumer stores it when it sends one."""
    blob = tmp_path / "code.json"
    blob.write_bytes(issued.encode())
    subprocess.run([str(REPO_ROOT / "node_modules" / ".bin" / "wrangler"), "kv", "key", "put", "--local",
                    "--persist-to", str(state), "--binding", "NUDGE_KV", code_key(issued.code), "--path", str(blob)],
                   cwd=REPO_ROOT, env={**os.environ, **edge_environment()}, check=True, capture_output=True)


def test_twenty_browsers_redeeming_one_follow_up_code_at_once_get_one_offer(edge: Edge, tmp_path: Path) -> None:
    issued = IssuedCode("CART-ABCDEFGHIJ", CART_RULE, "0" * 16, 10, None, "sneakers", "/cart", int(time.time()) + 3600)
    put_code(edge.kv_dir, issued, tmp_path)  # while the edge runs: codes are read from KV when redeemed
    answers = at_once(PARALLEL, lambda _: redeem_with(edge, {}, f"code={issued.code}"))
    assert all(a.status_code == 303 and a.headers["location"] == "/cart" for a in answers)
    assert sum(granted(a) for a in answers) == 1
    assert [message(a) for a in answers if not granted(a)] == ["offer-used"] * (PARALLEL - 1)


def test_a_follow_up_event_is_enqueued_once_and_each_attempt_posts_once(tmp_path: Path) -> None:
    # The cart change and the next page view in the same second make the same event id: one message.
    # (A pair split across a second is tried again; the 6 s wait, the 5 s delay and the batch
    # timeout, lets the later event supersede.)
    with edge_with_hook(tmp_path, 503, 503, 200, cap=6 - QUICK_BATCH_SECONDS) as (edge, hook), edge.client() as shopper:
        for _ in range(5):  # a busy machine may split the pair across a second: then again
            next_second()
            start = time.time()
            abandon_cart(shopper)
            shopper.get("/collections/boots")
            if int(time.time()) == int(start):
                break
        else:
            pytest.fail("no cart change and page view within one second")
        accepted = wait_until(edge, "an accepted delivery", lambda: hook.accepted or None)
        event = body(accepted[0])["eventId"]
        wait_until(edge, "the delivered attempt's line", lambda: any(
            x["event"] == event and x["result"] == "delivered" for x in attempts(edge)))
        wait_settled(edge, 1)  # the delivered message acked (and any copy of it handled before)
        same = [(x["attempt"], x["result"]) for x in attempts(edge) if x["event"] == event]
        assert same == [(1, "retry"), (2, "retry"), (3, "delivered")]  # one message, three attempts
        assert [r.status for r in hook.received if body(r)["eventId"] == event] == [503, 503, 200]  # one POST each
        assert len(hook.accepted) == 1 and body(accepted[0])["userId"] == "cust-42"
