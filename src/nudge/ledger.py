"""The redemption ledger: single use and daily budgets, kept where they cannot be raced.

KV is eventually consistent and has no compare-and-set, so two redemptions at the same moment both
see "not used yet" and "budget left". The ledger lives in a Durable Object instead (one per rule,
`NudgeLedger`, SQLite-backed; see src/entry.py): a Durable Object runs one request at a time and
`redeem` below does its check and its writes synchronously, with no `await` in between, so no
other redemption can interleave; the primary key on `redeemed.key` is the second line of defence.

One object per rule (not per rule and day) because a rule's two guarantees meet there: a visitor's
redemption and the day's count change together or not at all, and a token minted before midnight
and used after it still finds its earlier redemption. A rule's redemptions are a few per second
at most, far below what one object serves.

Plain Python: the SQL runs through a callable, SQLite's own in the tests, the Durable Object's
`ctx.storage.sql` on workerd (the edge adapts it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

REDEEMED = "redeemed"  # granted now, and counted
USED = "used"  # this key redeemed before
ENDED = "ended"  # the rule's budget for today is spent
UNAVAILABLE = "unavailable"  # the ledger could not be asked: nothing is granted (fail closed)
VERDICTS = frozenset((REDEEMED, USED, ENDED, UNAVAILABLE))

LEDGER_BINDING = "NUDGE_LEDGER"
KEEP_DAYS = 2  # a day's count is kept this many days after it (then pruned)
MAX_KEY = 64

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS redeemed (key TEXT PRIMARY KEY, at INTEGER NOT NULL, keep_until INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS redeemed_keep ON redeemed (keep_until)",
    "CREATE TABLE IF NOT EXISTS budget (day INTEGER PRIMARY KEY, used INTEGER NOT NULL)",
)

Sql = Callable[..., Sequence[Sequence[object]]]  # sql(query, *params) -> rows


class LedgerError(ValueError):
    """A request the ledger refuses to act on (a malformed key or number)."""


class Ledger:
    """A rule's redemptions and daily counts in one SQLite database (a Durable Object's)."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql
        for statement in SCHEMA:
            sql(statement)

    def redeem(self, key: str, limit: int, keep_until: int, now: int) -> str:
        """REDEEMED (recorded and counted), USED (the key redeemed before) or ENDED (`limit`
        redemptions today already; 0: no limit). Synchronous on purpose: nothing interleaves."""
        if not isinstance(key, str) or not 2 < len(key) <= MAX_KEY:
            raise LedgerError("ledger key must be a short string")
        for name, value in (("limit", limit), ("keep_until", keep_until), ("now", now)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise LedgerError(f"{name} must be a whole number >= 0")
        day = now // 86_400
        self._sql("DELETE FROM redeemed WHERE keep_until < ?", now)
        if self._sql("SELECT 1 FROM redeemed WHERE key = ?", key):
            return USED
        if limit and self.used(now) >= limit:
            return ENDED
        self._sql("INSERT INTO redeemed (key, at, keep_until) VALUES (?, ?, ?)", key, now, max(keep_until, now))
        self._sql("INSERT INTO budget (day, used) VALUES (?, 1) ON CONFLICT (day) DO UPDATE SET used = used + 1", day)
        self._sql("DELETE FROM budget WHERE day < ?", day - KEEP_DAYS)
        return REDEEMED

    def used(self, now: int) -> int:
        """Redemptions counted on `now`'s UTC day."""
        rows = self._sql("SELECT used FROM budget WHERE day = ?", now // 86_400)
        value = rows[0][0] if rows else 0
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def verdict(answer: object) -> str:
    """What the ledger's answer means at the edge: anything unexpected is UNAVAILABLE (no offer)."""
    return answer if isinstance(answer, str) and answer in VERDICTS else UNAVAILABLE


@dataclass(frozen=True)
class LedgerClaim:
    """What the edge asks a rule's ledger: record `key` once (within `limit` a day; 0: no limit),
    remembered until `keep_until`."""

    rule: str
    key: str
    limit: int
    keep_until: int
