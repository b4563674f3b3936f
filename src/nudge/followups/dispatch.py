"""What the follow-up consumer does with a message that came due, decided over plain values (the
runtime reads KV, asks here, then sends, acks or retries), and the one log line per attempt.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from nudge.followups.messages import FollowUp, Pending
from nudge.followups.planning import skip_reason
from nudge.rules.bucketing import in_holdout
from nudge.rules.model import Rule

CODE_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,12}-[A-Z2-7]{10}")  # a follow-up's single-use code

Step = Literal["skip", "holdout", "wait", "send"]


def is_code_shaped(code: str) -> bool:
    """Whether a redeem link's `code` can be a follow-up's code at all (else KV is not asked)."""
    return CODE_SHAPE.fullmatch(code) is not None


def next_step(message: FollowUp, rule: Rule | None, pending: Pending | None, last_order: int,
              contact: str | None, now: int, enabled: bool) -> tuple[Step, str | None]:
    """(step, reason): "skip" it (no longer holds; the reason is logged), count it as a "holdout"
    (would have been sent, never is), "wait" (follow-ups are not configured in this isolate: retried
    later) or "send" it to the webhook."""
    reason = skip_reason(message, rule, pending, last_order, contact, now)
    if reason is not None or rule is None or pending is None or contact is None:
        return "skip", reason
    if in_holdout(rule.id, message.visitor, rule.holdout):
        return "holdout", None
    if not enabled:
        return "wait", "follow-ups are not configured"
    return "send", None


def attempt_log_line(message: FollowUp | None, attempt: int, result: str, **extra: Any) -> str:
    """One JSON line per attempt: event and rule, never the visitor or the customer."""
    return json.dumps({"nudge": "followup", "event": message.event if message else None,
                       "rule": message.rule if message else None, "attempt": attempt, "result": result, **extra},
                      separators=(",", ":"))
