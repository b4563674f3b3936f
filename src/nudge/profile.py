"""The long-term visitor profile kept in Workers KV (msgpack), one key per visitor.

KV allows one write per second per key and is eventually consistent, so the profile is written at
most once per visit (and on purchase), off the response path, and a missing or unreadable profile
is just a first-time visitor.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

PROFILE_TTL = 400 * 24 * 3600


@dataclass
class Profile:
    visits: int = 0
    orders: int = 0
    first_seen: int = 0
    last_seen: int = 0


def profile_key(visitor: str) -> str:
    return f"profile:{visitor}"


def encode_profile(p: Profile) -> bytes:
    return msgpack.packb([1, p.visits, p.orders, p.first_seen, p.last_seen])


def decode_profile(data: bytes | None) -> Profile | None:
    """The stored profile, or None when absent or unreadable (treated as a new visitor)."""
    if not data:
        return None
    try:
        version, visits, orders, first_seen, last_seen = msgpack.unpackb(data)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if version != 1 or not all(isinstance(v, int) for v in (visits, orders, first_seen, last_seen)):
        return None
    return Profile(visits, orders, first_seen, last_seen)


def next_profile(stored: Profile | None, now: int, new_visit: bool, orders_added: int) -> Profile | None:
    """The profile to write after this request, or None when nothing warrants a KV write."""
    if not new_visit and not orders_added:
        return None
    p = stored or Profile(first_seen=now)
    return Profile(
        visits=p.visits + (1 if new_visit else 0),
        orders=p.orders + orders_added,
        first_seen=p.first_seen or now,
        last_seen=now,
    )
