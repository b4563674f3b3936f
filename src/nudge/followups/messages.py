"""What follow-ups keep and send: the queue message (`FollowUp`), a rule's follow-up state for one
visitor in KV (`Pending`) and a single-use offer code in KV (`IssuedCode`), each with its encoding.
A message nudge did not write (or an older layout) is a `MessageError`: dropped, never retried.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

ACTIONS = {"cart_abandoned": "abandoned_cart", "browse_abandoned": "abandoned_browse"}
MESSAGE_VERSION = 1
MAX_ITEMS = 20
MAX_SENT_KEPT = 20


class MessageError(ValueError):
    """A queue message nudge did not write (or an older layout): dropped, never retried."""


def event_id(rule_id: str, visitor: str, due: int) -> str:
    """The idempotency key of one follow-up: the same rule, visitor and due time."""
    return hashlib.sha256(f"{rule_id}|{visitor}|{due}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class FollowUp:
    """A queue message: what to follow up, for whom, when."""

    event: str
    rule: str
    visitor: str
    action: str  # ACTIONS values
    due: int  # Unix seconds
    queued: int  # Unix seconds it was enqueued (a purchase after this cancels it)
    site: str  # scheme://host of the shop, for the links in the payload
    items: tuple[tuple[str, int], ...] = ()  # cart lines (sku, quantity), or recently viewed products
    category: str | None = None

    def delay(self, now: int) -> int:
        return max(0, self.due - now)

    def to_json(self) -> str:
        return json.dumps({"v": MESSAGE_VERSION, "event": self.event, "rule": self.rule, "visitor": self.visitor,
                           "action": self.action, "due": self.due, "queued": self.queued, "site": self.site,
                           "items": [list(i) for i in self.items], "category": self.category},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: object) -> FollowUp:
        """The message; raises MessageError for anything else."""
        try:
            data = json.loads(text) if isinstance(text, (str, bytes)) else None
            if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
                raise MessageError("not a nudge follow-up message")
            items = tuple((str(sku)[:48], int(qty)) for sku, qty in data["items"][:MAX_ITEMS])
            message = cls(str(data["event"]), str(data["rule"]), str(data["visitor"]), str(data["action"]),
                          int(data["due"]), int(data["queued"]), str(data["site"]), items,
                          None if data["category"] is None else str(data["category"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"malformed follow-up message: {exc}") from None
        if message.action not in ACTIONS.values() or len(message.visitor) != 16 or len(message.event) != 24:
            raise MessageError("malformed follow-up message")
        return message


@dataclass
class Pending:
    """A rule's follow-up state for one visitor in KV: the newest scheduled event, or why it was
    cancelled, and when it was sent before (caps, idempotency)."""

    event: str = ""
    due: int = 0
    cancelled: str | None = None  # "checkout", "purchase", "cart", "consent"
    sent: list[int] = field(default_factory=list)  # Unix seconds of earlier sends, most recent last
    sent_events: list[str] = field(default_factory=list)  # their event ids

    def encode(self) -> bytes:
        return json.dumps({"event": self.event, "due": self.due, "cancelled": self.cancelled,
                           "sent": self.sent[-MAX_SENT_KEPT:], "sent_events": self.sent_events[-MAX_SENT_KEPT:]},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Pending | None:
        """The stored state; None when absent or unreadable (nothing pending)."""
        if not data:
            return None
        try:
            raw = json.loads(data)
            cancelled = raw["cancelled"] if isinstance(raw["cancelled"], str) else None
            return cls(str(raw["event"]), int(raw["due"]), cancelled,
                       [int(t) for t in raw["sent"]], [str(e) for e in raw["sent_events"]])
        except (KeyError, TypeError, ValueError):
            return None

    def in_flight(self, message: FollowUp) -> bool:
        """Whether this very event (same rule, visitor and due time) is already queued or sent: a
        cart change and the page view after it in the same second make the same event, which is
        enqueued once, not twice (two messages would each POST on every attempt)."""
        return self.event == message.event and self.cancelled is None

    def scheduled(self, message: FollowUp) -> Pending:
        return Pending(message.event, message.due, None, list(self.sent), list(self.sent_events))

    def cancel(self, reason: str) -> Pending:
        return Pending(self.event, self.due, reason, list(self.sent), list(self.sent_events))

    def delivered(self, message: FollowUp, now: int) -> Pending:
        return Pending(self.event, self.due, self.cancelled, [*self.sent, now][-MAX_SENT_KEPT:],
                       [*self.sent_events, message.event][-MAX_SENT_KEPT:])


@dataclass(frozen=True)
class IssuedCode:
    """A single-use offer code in KV (`code:<CODE>`): what it grants and whether it was used."""

    code: str
    rule: str
    visitor: str
    percent: int
    amount: float | None
    category: str
    redirect: str
    expires: int
    used: int = 0  # Unix seconds of its redemption, 0 while unused

    def encode(self) -> bytes:
        return json.dumps([self.code, self.rule, self.visitor, self.percent, self.amount, self.category,
                           self.redirect, self.expires, self.used], separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> IssuedCode | None:
        if not data:
            return None
        try:
            code, rule, visitor, percent, amount, category, redirect, expires, used = json.loads(data)
            return cls(str(code), str(rule), str(visitor), int(percent), None if amount is None else float(amount),
                       str(category), str(redirect), int(expires), int(used))
        except (TypeError, ValueError):
            return None
