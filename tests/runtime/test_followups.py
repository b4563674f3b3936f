"""Follow-ups through Queues, in Pyodide: a logged-in shopper's abandoned cart becomes one signed
webhook 15 minutes later (on the local runtime's advanced queue clock), and every reason not to
send - or to send again - holds: checkout, forget, withdrawn consent, anonymity, duplicates,
a receiver that fails, refuses or hangs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from nudge.followup import SIGNATURE_HEADER, verify
from tests.runtime.test_worker import CODEC, Edge, edge_in_front_of_origin
from tests.support.webhook import Hook, serving_hook

pytestmark = pytest.mark.runtime
HOOK_SECRET = "hook-secret-123"
PRODUCT = "/collections/sneakers/products/aero-runner"
ADD = {"type": "add_to_cart", "items": [{"id": "SNK-001", "quantity": 2}], "value": 258.0}
WINDOW = 15 * 60  # rules/cart-abandoned-email.toml


@contextmanager
def edge_with_hook(tmp_path: Path, *script: int | tuple[int, float], extra: tuple[str, ...] = ()) -> Iterator[tuple[Edge, Hook]]:
    with serving_hook(*script) as hook, edge_in_front_of_origin(
            tmp_path / "kv", "--var", "NUDGE_EDGE_CART:off", "--var", f"NUDGE_WEBHOOK_URL:{hook.url}",
            "--var", f"NUDGE_WEBHOOK_SECRET:{HOOK_SECRET}", "--var", "NUDGE_WEBHOOK_TIMEOUT:1", *extra) as edge:
        yield edge, hook


def queues(edge: Edge) -> dict[str, Any]:
    return httpx.get(f"{edge.url}/__local-edge/queues", timeout=10).json()  # type: ignore[no-any-return]


def advance(edge: Edge, seconds: int) -> dict[str, Any]:
    reply = httpx.post(f"{edge.url}/__local-edge/queues/advance?seconds={seconds}", timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def pending(edge: Edge, queue: str = "nudge-followups") -> list[dict[str, Any]]:
    return queues(edge)["queues"][queue]["pending"]  # type: ignore[no-any-return]


def wait_pending(edge: Edge, count: int, seconds: float = 10) -> list[dict[str, Any]]:
    """The queue's pending messages once `count` are there (enqueued after the response)."""
    deadline = time.monotonic() + seconds
    while len(found := pending(edge)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def abandon_cart(client: httpx.Client, user: str | None = "cust-42", consent: dict[str, str] | None = None) -> str:
    """A shopper (logged in unless `user` is None) views a product, adds two to the cart, leaves."""
    client.get(PRODUCT, headers=consent or {})
    events: list[dict[str, Any]] = [{"type": "identify", "user": user}] if user else []
    assert client.post("/_nudge/beacon", json={"events": [*events, ADD]}, headers=consent or {}).status_code == 204
    return CODEC.decode(client.cookies["nudge"]).visitor_id


def delivered(hook: Hook, count: int = 1) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in hook.wait_for(count)]


def test_an_abandoned_cart_is_followed_up_once_with_a_signed_payload_and_a_working_code(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        assert len(wait_pending(edge, 1)) == 1
        advance(edge, WINDOW - 60)
        assert hook.received == []  # not before the window
        advance(edge, 60)
        [got] = hook.wait_for(1)
        assert verify(HOOK_SECRET.encode(), got.body, got.headers[SIGNATURE_HEADER.lower()], int(time.time()))
        body = json.loads(got.body)
        assert body["action"] == "abandoned_cart" and body["userId"] == "cust-42"
        assert [(i["id"], i["quantity"], i["name"]) for i in body["cartItems"]] == [("SNK-001", 2, "Aero Runner")]
        assert len(body["recommendations"]) == 3 and got.headers["x-nudge-event"] == body["eventId"]
        offer = body["offer"]
        assert offer["percent"] == 10 and offer["category"] == "sneakers" and offer["code"].startswith("CART-")
        assert offer["url"] == f"{edge.url}/_nudge/redeem?code={offer['code']}"
        advance(edge, 24 * 3600)
        assert len(hook.received) == 1  # once
        logs = edge.process.output()
        assert '"result":"delivered"' in logs and "cust-42" not in logs  # no customer id in the logs
        with edge.client() as returning:  # the code works in any browser, once
            back = returning.get(f"/_nudge/redeem?code={offer['code']}")
            assert back.status_code == 303 and back.headers["location"] == "/cart"
            returning.get("/collections/sneakers")
            seen = next(h for h in reversed(edge.seen) if h.get(":path") == "/collections/sneakers")
            assert seen.get("x-nudge-offer", "").startswith(f"code={offer['code']}; percent=10")
        with edge.client() as another:
            again = another.get(f"/_nudge/redeem?code={offer['code']}")
            assert again.status_code == 303 and "nudge_offer" not in again.cookies
            assert "offer-used" in again.headers.get("set-cookie", "")


def test_a_receiver_failing_then_accepting_gets_exactly_one_delivery(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path, 500, 200) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        wait_pending(edge, 1)
        advance(edge, WINDOW)
        assert [r.status for r in hook.wait_for(1)] == [500]
        advance(edge, 30)  # the first retry waits 30 s
        assert [r.status for r in hook.wait_for(2)] == [500, 200]
        advance(edge, 3 * 3600)
        assert len(hook.received) == 2 and len(hook.accepted) == 1
        first, second = (json.loads(r.body) for r in hook.received)
        assert first["eventId"] == second["eventId"] and first["offer"]["code"] == second["offer"]["code"]


def test_a_receiver_refusing_with_400_is_not_retried_and_the_message_is_dead_lettered(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path, 400) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        wait_pending(edge, 1)
        advance(edge, WINDOW)
        hook.wait_for(1)
        advance(edge, 6 * 3600)
        assert len(hook.received) == 1
        [dead] = pending(edge, "nudge-followups-dlq")
        assert "webhook answered 400" in json.dumps(dead["body"])


@pytest.mark.parametrize("script", [(200, 3.0), "down"])
def test_a_slow_or_unreachable_receiver_is_retried_with_backoff(tmp_path: Path, script: Any) -> None:
    if script == "down":
        with serving_hook() as gone:
            url = gone.url  # a port nobody listens on once the block ends
        with edge_in_front_of_origin(tmp_path / "kv", "--var", "NUDGE_EDGE_CART:off", "--var", f"NUDGE_WEBHOOK_URL:{url}",
                                     "--var", f"NUDGE_WEBHOOK_SECRET:{HOOK_SECRET}") as edge, edge.client() as shopper:
            abandon_cart(shopper)
            wait_pending(edge, 1)
            advance(edge, WINDOW)
            [again] = wait_pending(edge, 1)
            assert again["attempts"] == 1 and '"result":"retry"' in edge.process.output()
        return
    with edge_with_hook(tmp_path, script, 200) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        wait_pending(edge, 1)
        advance(edge, WINDOW)  # the receiver takes 3 s; nudge gives up after 1 s (NUDGE_WEBHOOK_TIMEOUT)
        assert '"result":"retry"' in edge.process.output()
        advance(edge, 30)
        assert len(hook.wait_for(2)) == 2 and len(hook.accepted) >= 1


def test_a_duplicate_queue_message_is_sent_once(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        [message] = wait_pending(edge, 1)
        advance(edge, WINDOW)
        hook.wait_for(1)
        # Queues deliver at least once: the same message again.
        injected = httpx.post(f"{edge.url}/__local-edge/queues/send?queue=nudge-followups",
                              content=json.dumps(message["body"]), timeout=10)
        assert injected.status_code == 200, injected.text
        advance(edge, 1)
        assert len(hook.received) == 1 and '"reason":"already sent"' in edge.process.output()


def test_checking_out_in_the_window_cancels_the_follow_up(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        wait_pending(edge, 1)
        assert shopper.post("/_nudge/beacon", json={"events": [{"type": "begin_checkout", "items": []}]}).status_code == 204
        time.sleep(0.5)  # the cancellation is written after the response
        advance(edge, WINDOW)
        deadline = time.monotonic() + 5
        while '"reason":"cancelled: checkout"' not in edge.process.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hook.received == [] and '"reason":"cancelled: checkout"' in edge.process.output()


def test_forget_and_anonymity_mean_nothing_is_sent(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path) as (edge, hook):
        with edge.client() as forgetful:
            abandon_cart(forgetful)
            wait_pending(edge, 1)
            assert forgetful.post("/_nudge/forget").status_code == 200
        with edge.client() as anonymous:
            abandon_cart(anonymous, user=None)
            wait_pending(edge, 2)
        advance(edge, WINDOW)
        output = ""
        deadline = time.monotonic() + 5
        while output.count('"result":"skipped"') < 2 and time.monotonic() < deadline:
            output = edge.process.output()
            time.sleep(0.05)
        assert hook.received == []
        assert '"reason":"nothing pending (forgotten, or never stored)"' in output
        assert '"reason":"anonymous visitor (no logged-in customer id)"' in output


def test_withdrawn_consent_means_nothing_is_sent(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path, extra=("--var", "NUDGE_CONSENT:gpc")) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        wait_pending(edge, 1)
        shopper.get("/collections/boots", headers={"sec-gpc": "1"})  # the browser now says no
        time.sleep(0.5)
        advance(edge, WINDOW)
        deadline = time.monotonic() + 5
        while '"result":"skipped"' not in edge.process.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hook.received == [] and '"reason":"nothing pending' in edge.process.output()


def test_later_activity_postpones_the_follow_up(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path) as (edge, hook), edge.client() as shopper:
        abandon_cart(shopper)
        wait_pending(edge, 1)
        time.sleep(1.1)  # KV: one write per second per key
        shopper.get("/collections/boots")  # still browsing, the cart still waiting
        assert len(wait_pending(edge, 2)) == 2
        advance(edge, WINDOW + 5)
        hook.wait_for(1)
        assert len(hook.received) == 1 and '"reason":"superseded by later activity"' in edge.process.output()


def test_a_browser_who_viewed_three_sneakers_and_left_is_followed_up_with_the_category(tmp_path: Path) -> None:
    with edge_with_hook(tmp_path) as (edge, hook), edge.client() as shopper:
        shopper.get("/")
        assert shopper.post("/_nudge/beacon", json={"events": [{"type": "identify", "user": "cust-9"}]}).status_code == 204
        for slug in ("aero-runner", "court-classic", "trail-sprint"):
            time.sleep(1.05)  # KV: one write per second per key (each view reschedules)
            shopper.get(f"/collections/sneakers/products/{slug}")
        wait_pending(edge, 1)
        advance(edge, 30 * 60 + 5)
        [body] = delivered(hook)
        assert body["action"] == "abandoned_browse" and body["category"] == "sneakers" and body["userId"] == "cust-9"
        assert body["cartItems"] == [] and body["offer"] is None
        viewed = {"aero-runner", "court-classic", "trail-sprint"}
        assert body["recommendations"] and all(r["url"].rsplit("/", 1)[1] not in viewed for r in body["recommendations"])
