"""The redemption ledger (single use, daily budgets) over SQLite, as the Durable Object runs it,
and how the app turns its verdicts into answers (issue 15, item 4)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from urllib.parse import quote

import pytest

from nudge.engine import Engine
from nudge.followups.messages import FollowUp, IssuedCode, Pending
from nudge.isolate_memory import IsolateMemory
from nudge.kv_keys import KEEP_VISITOR, code_ledger_key, ledger_name, visitor_key
from nudge.ledger import ENDED, REDEEMED, UNAVAILABLE, USED, Ledger, LedgerError, verdict
from nudge.rules.load import load_ruleset
from nudge.visitor.session import Session

from .factories import NOW, SECRET, repo_rule_files

DAY = 86_400


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    yield connection
    connection.close()


def on(db: sqlite3.Connection) -> Ledger:
    """A ledger over SQLite, as the Durable Object's storage runs it."""

    def run(query: str, *params: object) -> Sequence[Sequence[object]]:
        return db.execute(query, params).fetchall()

    return Ledger(run)


def test_a_key_redeems_once(db: sqlite3.Connection) -> None:
    ledger = on(db)
    assert ledger.redeem("v:abc", 0, NOW + 60, NOW) == REDEEMED
    assert [ledger.redeem("v:abc", 0, NOW + 60, NOW + s) for s in range(5)] == [USED] * 5
    assert ledger.redeem("v:other", 0, NOW + 60, NOW) == REDEEMED
    assert ledger.used(NOW) == 2


def test_the_daily_limit_is_never_exceeded_and_a_new_day_starts_over(db: sqlite3.Connection) -> None:
    ledger = on(db)
    answers = [ledger.redeem(f"v:{n:03}", 3, NOW + DAY, NOW) for n in range(20)]
    assert answers.count(REDEEMED) == 3 and answers[3:] == [ENDED] * 17 and ledger.used(NOW) == 3
    assert ledger.redeem("v:000", 3, NOW + DAY, NOW) == USED  # used beats ended: the clearer answer
    tomorrow = (NOW // DAY + 1) * DAY
    assert ledger.redeem("v:100", 3, tomorrow + DAY, tomorrow) == REDEEMED and ledger.used(tomorrow) == 1
    assert ledger.redeem("v:000", 3, tomorrow + DAY, tomorrow) == USED  # still remembered


def test_refused_redemptions_are_not_recorded(db: sqlite3.Connection) -> None:
    ledger = on(db)
    ledger.redeem("v:a", 1, NOW + DAY, NOW)
    assert ledger.redeem("v:b", 1, NOW + DAY, NOW) == ENDED
    tomorrow = (NOW // DAY + 1) * DAY
    assert ledger.redeem("v:b", 1, tomorrow + DAY, tomorrow) == REDEEMED  # refused yesterday, not used


def test_entries_are_forgotten_after_their_keep_time_and_old_days_are_pruned(db: sqlite3.Connection) -> None:
    ledger = on(db)
    ledger.redeem("c:CODE-AAAAAAAAAA", 0, NOW + 100, NOW)
    assert ledger.redeem("c:CODE-AAAAAAAAAA", 0, NOW + 100, NOW + 100) == USED
    assert ledger.redeem("c:CODE-AAAAAAAAAA", 0, NOW + 200, NOW + 101) == REDEEMED  # kept until NOW + 100
    later = NOW + 5 * DAY
    ledger.redeem("v:later", 0, later, later)
    assert ledger.used(NOW) == 0  # days more than two back are gone


def test_a_reopened_ledger_keeps_what_it_recorded(db: sqlite3.Connection) -> None:
    on(db).redeem("v:x", 1, NOW + DAY, NOW)
    again = on(db)  # a Durable Object's constructor runs again after eviction
    assert again.redeem("v:x", 1, NOW + DAY, NOW) == USED and again.redeem("v:y", 1, NOW + DAY, NOW) == ENDED


@pytest.mark.parametrize("key, limit, keep, now", [
    ("", 0, NOW, NOW), ("v:" + "x" * 80, 0, NOW, NOW), (None, 0, NOW, NOW), ("v:ok", -1, NOW, NOW),
    ("v:ok", True, NOW, NOW), ("v:ok", 0, "soon", NOW), ("v:ok", 0, NOW, 1.5),
])
def test_malformed_requests_are_refused_with_a_clear_error(db: sqlite3.Connection, key: object, limit: object,
                                                           keep: object, now: object) -> None:
    ledger = on(db)
    with pytest.raises(LedgerError):
        ledger.redeem(key, limit, keep, now)  # type: ignore[arg-type]
    assert ledger.used(NOW) == 0


def test_keys_and_names() -> None:
    assert ledger_name("sneakers-exit-intent") == "rule:sneakers-exit-intent"
    key = visitor_key(b"s", "visitor-1")
    assert key.startswith("v:") and len(key) == 34 and "visitor-1" not in key
    assert key == visitor_key(b"s", "visitor-1") != visitor_key(b"t", "visitor-1") != visitor_key(b"s", "visitor-2")
    assert code_ledger_key("CART-ABCDEFGHIJ") == "c:CART-ABCDEFGHIJ"


@pytest.mark.parametrize("answer, meaning", [
    (REDEEMED, REDEEMED), (USED, USED), (ENDED, ENDED), ("granted", UNAVAILABLE), (None, UNAVAILABLE),
    (1, UNAVAILABLE),
])
def test_anything_but_a_known_answer_means_no_offer(answer: object, meaning: str) -> None:
    assert verdict(answer) == meaning


# -- the app -------------------------------------------------------------------------------------


def budget_app(limit: int | None = None) -> Engine:
    files = repo_rule_files()
    if limit is not None:
        name = "sneakers-exit-intent.toml"
        files[name] = files[name].replace("percent = 10\n", f"percent = 10\nmax_per_day = {limit}\n")
    return Engine(load_ruleset(files), SECRET, "/* client */")


def token_query(app: Engine, session: Session) -> str:
    rule = app.ruleset.rule("sneakers-exit-intent")
    assert rule is not None
    return "t=" + quote(app.offers.mint(rule, session.visitor_id, NOW), safe="")


def set_cookies(reply: object) -> list[str]:
    return [v for k, v in reply.headers if k == "Set-Cookie"]  # type: ignore[attr-defined]


def test_a_redemption_asks_the_ledger_about_the_visitor_and_the_rules_budget() -> None:
    app = budget_app(3)
    session = Session.fresh(NOW, b"visitor-a")
    claim = app.redeem_claim(token_query(app, session), session, NOW)
    assert claim is not None and claim.rule == "sneakers-exit-intent" and claim.limit == 3
    assert claim.key == visitor_key(app.ledger_secret, session.visitor_id) and claim.keep_until == NOW + KEEP_VISITOR
    assert budget_app().redeem_claim(token_query(app, session), session, NOW).limit == 0  # type: ignore[union-attr]
    assert app.redeem_claim("t=forged", session, NOW) is None
    other = Session.fresh(NOW, b"visitor-b")
    assert app.redeem_claim(token_query(app, session), other, NOW) is None  # another visitor's token


@pytest.mark.parametrize("answer, message", [
    (USED, "offer-used"), (ENDED, "offer-ended"), (UNAVAILABLE, "offer-unavailable"), ("junk", "offer-unavailable"),
])
def test_a_ledger_refusal_grants_nothing_and_says_why(answer: str, message: str) -> None:
    app, memory = budget_app(3), IsolateMemory()
    session = Session.fresh(NOW, b"visitor-a")
    before = app.codec.encode(session)
    reply, event = app.redeem(memory, token_query(app, session), session, NOW, True, verdict=answer)
    assert reply.status == 303 and dict(reply.headers)["Location"] == "/collections/sneakers"
    assert [c.split(";")[0] for c in set_cookies(reply)] == [f"nudge_msg={message}"]
    assert not event and event.events == [] and app.codec.encode(session) == before
    assert ("sneakers-exit-intent" in memory.budgets.spent_today(NOW)) == (answer == ENDED)  # stops showing today


def test_a_granted_redemption_closes_the_rule_and_a_closed_one_needs_no_ledger() -> None:
    app = budget_app(3)
    session = Session.fresh(NOW, b"visitor-a")
    query = token_query(app, session)
    reply, event = app.redeem(IsolateMemory(), query, session, NOW, True, verdict=REDEEMED)
    assert event.redeemed == 1 and any(c.startswith("nudge_offer=") for c in set_cookies(reply))
    assert app.redeem_claim(query, session, NOW + 1) is None
    again, _ = app.redeem(IsolateMemory(), query, session, NOW + 1, True, verdict=UNAVAILABLE)
    assert [c.split(";")[0] for c in set_cookies(again)] == ["nudge_msg=offer-used"]


def issued(used: int = 0) -> IssuedCode:
    return IssuedCode("CART-ABCDEFGHIJ", "cart-abandoned-email", "v" * 16, 10, None, "sneakers", "/cart",
                      NOW + 3600, used)


def test_a_follow_up_code_is_claimed_once_outside_the_budget_and_refused_when_the_ledger_says_so() -> None:
    app = budget_app()
    claim = app.code_claim(issued(), NOW)
    assert claim is not None and (claim.rule, claim.key, claim.limit, claim.keep_until) == (
        "cart-abandoned-email", "c:CART-ABCDEFGHIJ", 0, NOW + 3600)
    assert app.code_claim(None, NOW) is None and app.code_claim(issued(), NOW + 3600) is None
    assert app.code_claim(issued(used=NOW - 5), NOW) is None
    for answer, message in ((USED, "offer-used"), (UNAVAILABLE, "offer-unavailable")):
        reply, event = app.redeem_code(issued(), Session.fresh(NOW, b"x"), NOW, True, verdict=answer)
        assert [c.split(";")[0] for c in set_cookies(reply)] == [f"nudge_msg={message}"] and not event
    granted, event = app.redeem_code(issued(), Session.fresh(NOW, b"x"), NOW, True, verdict=REDEEMED)
    assert event.redeemed == 1 and any(c.startswith("nudge_offer=") for c in set_cookies(granted))


def test_a_follow_up_event_already_pending_is_not_enqueued_again() -> None:
    message = FollowUp("e" * 24, "cart-abandoned-email", "v" * 16, "abandoned_cart", NOW + 900, NOW, "https://s")
    later = FollowUp("f" * 24, "cart-abandoned-email", "v" * 16, "abandoned_cart", NOW + 901, NOW + 1, "https://s")
    assert not Pending().in_flight(message)
    pending = Pending().scheduled(message)
    assert pending.in_flight(message) and not pending.in_flight(later)
    assert not pending.cancel("checkout").in_flight(message)  # cancelled, then the same second again: enqueue
    assert pending.delivered(message, NOW + 900).in_flight(message)  # sent: never again
