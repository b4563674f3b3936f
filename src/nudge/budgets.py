"""Which offers' daily discount budgets ran out today, as one isolate knows it.

The redemption ledger (ledger.py) is the truth: it grants at most `max_per_day` redemptions of a
rule per UTC day and answers ENDED after that. Pages must stop offering what the ledger would
refuse, but they cannot ask a Durable Object on every page, so an isolate remembers a rule as spent
from the moment it learns so (a redemption the ledger answered ENDED, or the runtime's look at the
ledger's count with each look for published rules: runtime/isolate.py) until the UTC day ends. Until an isolate has
learned it, it may still show the offer: the ledger then refuses the click with a polite message.

Plain memory, not configuration: it outlives the Engine (a newly published rule set makes a new
one), so the isolate holds it (isolate_memory.py).
"""

from __future__ import annotations

DAY = 86_400  # seconds: budgets count per UTC day, as the ledger does


class SpentBudgets:
    """Rule id -> the UTC day its budget ran out (one per isolate)."""

    def __init__(self) -> None:
        self._spent_on: dict[str, int] = {}

    def spent_today(self, now: int) -> frozenset[str]:
        """The rules whose budget ran out on `now`'s UTC day: decisions leave their offers out."""
        day = now // DAY
        return frozenset(rule for rule, spent_on in self._spent_on.items() if spent_on == day)

    def mark_spent(self, rule_id: str, now: int) -> None:
        """The rule's budget is used up for `now`'s UTC day (the ledger said ENDED)."""
        self._spent_on[rule_id] = now // DAY

    def record_used(self, rule_id: str, used: int, limit: int | None, now: int) -> bool:
        """Whether `used` redemptions today exhaust a daily `limit` (None: no budget); a rule
        whose budget they exhaust is marked spent."""
        if limit is None or used < limit:
            return False
        self.mark_spent(rule_id, now)
        return True
