"""Logged-in identity, kept only as a keyed hash, to link a shopper's devices to one profile.

Only the shop can say who a visitor is: its origin names the logged-in customer in a response
header (`X-Nudge-User`, which the Worker strips), or, when the claim must travel through the page,
the shop's server signs it (`shop_token`, verified here with NUDGE_SHOP_SECRET) and the site pushes
the token to its dataLayer. A customer id the browser states on its own is never identity. The raw
id is hashed with a key derived from the Worker's
secret the moment it arrives and never stored: KV holds ``identity:<hash> -> visitor id`` and the
profile remembers the hash, so /_nudge/forget can remove the link too.
"""

from __future__ import annotations

import base64
import binascii
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


def short(hashed: str) -> int:
    """The 32 bits of the hash the session cookie keeps, to notice when a different user logs in."""
    return int(hashed[:8], 16)


TOKEN_VERSION = "nudge1"
MAX_TOKEN_LIFETIME = 15 * 60  # a token that expires further ahead than this is refused


def shop_token(secret: bytes, user_id: str, expires: int) -> str:
    """The identity token a shop's server signs for its logged-in customer (the README documents
    the format so a shop can build it in any language):

        nudge1.<customer id, base64url without padding>.<expiry, Unix seconds>.<signature>

    where the signature is the lower-case hex HMAC-SHA256, keyed with NUDGE_SHOP_SECRET, of the
    first three fields joined by dots (`nudge1.<id>.<expiry>`)."""
    encoded = base64.urlsafe_b64encode(user_id.encode("utf-8")).decode("ascii").rstrip("=")
    signed = f"{TOKEN_VERSION}.{encoded}.{int(expires)}"
    return f"{signed}.{hmac.new(secret, signed.encode('ascii'), hashlib.sha256).hexdigest()}"


def verify_shop_token(secret: bytes | None, token: str, now: int) -> str | None:
    """The customer id a shop token vouches for; None when there is no shop secret, or the token is
    malformed, forged, expired, or expires more than MAX_TOKEN_LIFETIME ahead."""
    if not secret or len(token) > 512:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_VERSION or not parts[2].isdigit() or len(parts[2]) > 12:
        return None
    expected = hmac.new(secret, ".".join(parts[:3]).encode("ascii", "replace"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts[3].lower() if parts[3].isascii() else ""):
        return None
    expires = int(parts[2])
    if not now <= expires <= now + MAX_TOKEN_LIFETIME:
        return None
    try:
        user_id = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user_id = user_id.strip()
    if not user_id or len(user_id) > MAX_USER_ID or not user_id.isprintable():
        return None
    return user_id
