"""What the consumer does with a follow-up that came due (followups/dispatch.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nudge.followups.dispatch import attempt_log_line, is_code_shaped, next_step
from nudge.rules.bucketing import in_holdout
from tests.core.followups.test_planning import CART, due_message


def test_a_message_that_still_holds_is_sent_when_follow_ups_are_configured() -> None:
    m, pending = due_message()
    assert CART is not None and not in_holdout(CART.id, m.visitor, CART.holdout)
    assert next_step(m, CART, pending, 0, "cust-42", m.due, True) == ("send", None)


def test_an_isolate_without_the_webhook_configured_leaves_it_for_later() -> None:
    m, pending = due_message()
    assert next_step(m, CART, pending, 0, "cust-42", m.due, False) == ("wait", "follow-ups are not configured")


@pytest.mark.parametrize(("case", "reason"), [
    ("no rule", "rule removed or disabled"),
    ("nothing pending", "nothing pending (forgotten, or never stored)"),
    ("anonymous", "anonymous visitor (no logged-in customer id)"),
    ("bought since", "cancelled: purchase"),
])
def test_one_that_no_longer_holds_is_skipped_with_the_reason(case: str, reason: str) -> None:
    m, pending = due_message()
    rule = None if case == "no rule" else CART
    stored = None if case == "nothing pending" else pending
    contact = None if case == "anonymous" else "cust-42"
    last_order = m.queued + 1 if case == "bought since" else 0
    assert next_step(m, rule, stored, last_order, contact, m.due, True) == ("skip", reason)


def test_the_holdout_is_counted_never_sent_even_unconfigured() -> None:
    m, pending = due_message()
    assert CART is not None
    everyone = dataclasses.replace(CART, holdout=100.0)
    assert next_step(m, everyone, pending, 0, "cust-42", m.due, False) == ("holdout", None)


@pytest.mark.parametrize(("code", "shaped"), [
    ("CART-ABCDEFGHIJ", True),
    ("A_B-2345672345", True),
    ("cart-ABCDEFGHIJ", False),  # codes are upper case
    ("CART-ABCDEFGHI", False),  # 9 characters after the dash
    ("CART-ABCDEFGHI1", False),  # 1 is not base32
    ("TOOLONGPREFIX1-ABCDEFGHIJ", False),
    ("CART-ABCDEFGHIJ\n", False),
])
def test_only_code_shaped_values_are_looked_up(code: str, shaped: bool) -> None:
    assert is_code_shaped(code) is shaped


def test_the_attempt_log_line_names_event_and_rule_never_the_visitor() -> None:
    m, _ = due_message()
    line = json.loads(attempt_log_line(m, 2, "delivered", status=204))
    assert line == {"nudge": "followup", "event": m.event, "rule": m.rule, "attempt": 2, "result": "delivered",
                    "status": 204}
    assert m.visitor not in attempt_log_line(m, 1, "skipped", reason="x")
    assert json.loads(attempt_log_line(None, 1, "dead_letter", reason="bad"))["event"] is None
