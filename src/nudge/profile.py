"""The long-term visitor profile kept in Workers KV (msgpack), one key per visitor.

KV allows one write per second per key and is eventually consistent, so the profile is written at
most once per visit (its first page) and on key events (purchase), off the response path; every
write is a merge of what this request knows into what was read, so a stale read only delays a
count, never corrupts the record. A missing or unreadable profile is a first-time visitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from .session import MAX_TEXT, Session

PROFILE_TTL = 400 * 24 * 3600
PROFILE_VERSION = 3
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


def profile_key(visitor_id: str) -> str:
    return f"profile:{visitor_id}"


def encode_profile(p: Profile) -> bytes:
    affinity = [[k, round(v, 2)] for k, v in p.affinity.items()]
    data: bytes = msgpack.packb([PROFILE_VERSION, p.visits, p.orders, p.revenue, p.offers_redeemed,
                                 p.first_seen, p.last_seen, affinity, p.identity])
    return data


def decode_profile(data: bytes | None) -> Profile | None:
    """The stored profile, or None when absent or unreadable (treated as a new visitor)."""
    if not data:
        return None
    try:
        version, visits, orders, revenue, redeemed, first, last, affinity, identity = msgpack.unpackb(data)
        if version != PROFILE_VERSION or not (identity is None or isinstance(identity, str) and len(identity) <= 64):
            return None
        numbers = (visits, orders, revenue, redeemed, first, last)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers):
            return None
        aff = {str(k)[:MAX_TEXT]: float(v) for k, v in affinity[:MAX_AFFINITY]}
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    return Profile(visits, orders, revenue, redeemed, first, last, aff, identity)


def _decayed(affinity: dict[str, float], since: int, now: int) -> dict[str, float]:
    if since <= 0 or now <= since:
        return dict(affinity)
    factor = 0.5 ** ((now - since) / AFFINITY_HALF_LIFE)
    return {k: v * factor for k, v in affinity.items()}


def merged_profile(stored: Profile | None, now: int, *, new_visit: bool, ended: Session | None = None,
                   orders: int = 0, revenue: int = 0, redeemed: int = 0, identity: str | None = None) -> Profile:
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
    )
