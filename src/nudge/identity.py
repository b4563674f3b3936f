"""Logged-in identity, kept only as a keyed hash, to link a shopper's devices to one profile.

The origin names the logged-in customer in a response header (which the Worker strips) or the
site pushes `user_id` to its dataLayer. The raw id is hashed with a key derived from the Worker's
secret the moment it arrives and never stored: KV holds ``identity:<hash> -> visitor id`` and the
profile remembers the hash, so /_nudge/forget can remove the link too.
"""

from __future__ import annotations

import hashlib
import hmac

IDENTITY_HEADER = "x-nudge-user"
MAX_USER_ID = 128


def identity_hash(secret: bytes, user_id: str) -> str | None:
    """The keyed hash of a site's customer id (hex, 128 bits); None for an empty or oversized id."""
    user_id = user_id.strip()
    if not user_id or len(user_id) > MAX_USER_ID:
        return None
    key = hmac.new(secret, b"nudge/identity", hashlib.sha256).digest()
    return hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def identity_key(hashed: str) -> str:
    return f"identity:{hashed}"


def short(hashed: str) -> int:
    """The 32 bits of the hash the session cookie keeps, to notice when a different user logs in."""
    return int(hashed[:8], 16)
