"""The long-term visitor profile kept in Workers KV (msgpack), one key per visitor.

KV allows one write per second per key and is eventually consistent, so the profile is written at
most once per visit (its first request: a page, or the beacon, cart change or redemption that began
it) and on key events (purchase), off the response path; every write is a merge of what this
request knows into what was read, so a stale read only delays a count, never corrupts the record.
A missing or unreadable profile is a first-time visitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from nudge.visitor.session import MAX_TEXT, Session

PROFILE_VERSION = 5  # 4: the same without last_order (still read)
MAX_RULE_HISTORY = 32
MAX_AFFINITY = 8
AFFINITY_HALF_LIFE = 30 * 24 * 3600  # category interest halves every 30 days without visits


@dataclass
class Profile:
    visits: int = 0
    orders: int = 0
    revenue: int = 0  # cents
    offers_redeemed: int = 0
    first_seen: int = 0
    last_seen: int = 0  # start of the latest visit before this one
    affinity: dict[str, float] = field(default_factory=dict)  # category -> decayed interest
    identity: str | None = None  # keyed hash of the linked customer id (identity.py)
    nudges: dict[int, RuleHistory] = field(default_factory=dict)  # key32(rule id) -> history
    last_order: int = 0  # Unix seconds of the latest purchase (offer guardrail), 0 for none


@dataclass
class RuleHistory:
    """A rule's reveals to this visitor across visits, for per-day/lifetime caps and cooldowns."""

    total: int = 0
    day: int = 0  # UTC day number of `day_count`
    day_count: int = 0
    last_closed: int = 0  # Unix seconds of the last dismiss or click
    stopped: bool = False  # clicked or converted: stop for good (unless stop_after = "never")

    def today(self, now: int) -> int:
        return self.day_count if self.day == now // 86_400 else 0


def encode_profile(p: Profile) -> bytes:
    affinity = [[k, round(v, 2)] for k, v in p.affinity.items()]
    nudges = [[k, h.total, h.day, h.day_count, h.last_closed, int(h.stopped)] for k, h in p.nudges.items()]
    data: bytes = msgpack.packb([PROFILE_VERSION, p.visits, p.orders, p.revenue, p.offers_redeemed,
                                 p.first_seen, p.last_seen, affinity, p.identity, nudges, p.last_order])
    return data


def decode_profile(data: bytes | None) -> Profile | None:
    """The stored profile, or None when absent or unreadable (treated as a new visitor)."""
    if not data:
        return None
    try:
        (version, visits, orders, revenue, redeemed, first, last, affinity, identity, nudges,
         *more) = msgpack.unpackb(data)
        last_order = more[0] if version == PROFILE_VERSION and len(more) == 1 else 0
        if (not (version == 4 and not more or version == PROFILE_VERSION and len(more) == 1)
                or not (identity is None or isinstance(identity, str) and len(identity) <= 64)):
            return None
        numbers = (visits, orders, revenue, redeemed, first, last, last_order)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers):
            return None
        aff = {str(k)[:MAX_TEXT]: float(v) for k, v in affinity[:MAX_AFFINITY]}
        history = {}
        for key, total, day, day_count, closed, stopped in nudges[:MAX_RULE_HISTORY]:
            values = (key, total, day, day_count, closed, stopped)
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
                return None
            history[key] = RuleHistory(total, day, day_count, closed, bool(stopped))
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    return Profile(visits, orders, revenue, redeemed, first, last, aff, identity, history, last_order)


def _decayed(affinity: dict[str, float], since: int, now: int) -> dict[str, float]:
    if since <= 0 or now <= since:
        return dict(affinity)
    factor = 0.5 ** ((now - since) / AFFINITY_HALF_LIFE)
    return {k: v * factor for k, v in affinity.items()}


def _merged_history(history: dict[int, RuleHistory], ended: Session | None,
                    stopped: tuple[int, ...]) -> dict[int, RuleHistory]:
    """Folds the reveals and closes of the visit that ended (and rules to stop) into the history."""
    merged = {k: RuleHistory(h.total, h.day, h.day_count, h.last_closed, h.stopped) for k, h in history.items()}
    if ended is not None:
        day = ended.last_seen // 86_400
        for key, shown in ended.shown.items():
            h = merged.setdefault(key, RuleHistory())
            h.total += shown
            h.day_count = (h.day_count if h.day == day else 0) + shown
            h.day = day
        for key in ended.closed:
            merged.setdefault(key, RuleHistory()).last_closed = ended.last_seen
    for key in stopped:
        merged.setdefault(key, RuleHistory()).stopped = True
    recent = sorted(merged.items(), key=lambda kv: -max(kv[1].day * 86_400, kv[1].last_closed))
    return dict(recent[:MAX_RULE_HISTORY])


def merged_profile(stored: Profile | None, now: int, *, new_visit: bool, ended: Session | None = None,
                   orders: int = 0, revenue: int = 0, redeemed: int = 0, identity: str | None = None,
                   stopped: tuple[int, ...] = ()) -> Profile:
    """The profile after this request: one more visit on a visit's first page (folding in the
    category interest of the visit that just `ended`: views + distinct products + dwell minutes),
    plus the orders, revenue and redeemed offers a key event reports."""
    p = stored or Profile(first_seen=now)
    affinity = _decayed(p.affinity, p.last_seen, now) if new_visit else dict(p.affinity)
    for name, stats in (ended.categories.items() if ended else ()):
        affinity[name] = affinity.get(name, 0.0) + stats.views + len(stats.products) + stats.dwell / 60
    top = dict(sorted(affinity.items(), key=lambda kv: -kv[1])[:MAX_AFFINITY])
    return Profile(
        visits=p.visits + (1 if new_visit else 0),
        orders=p.orders + orders,
        revenue=p.revenue + revenue,
        offers_redeemed=p.offers_redeemed + redeemed,
        first_seen=p.first_seen or now,
        last_seen=now if new_visit else p.last_seen,
        affinity=top,
        identity=identity or p.identity,
        nudges=_merged_history(p.nudges, ended, stopped),
        last_order=now if orders > 0 else p.last_order,
    )
