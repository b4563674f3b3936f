"""Preview links: a marketer sees one rule (and variant) in their own browser before it goes live.

`nudge preview RULE` mints a signed, expiring link; `/_nudge/preview?t=...` turns it into a cookie
for that browser. While it lasts, every page shows that rule at once (no condition, cap or
trigger threshold) and the browser is not tracked: no session or profile is written and no event
is recorded, so real visitors' data and the rule's measurements stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from nudge.signing import BadData, Signer

PREVIEW_COOKIE = "nudge_preview"
MAX_HOURS = 72


@dataclass(frozen=True)
class Preview:
    rule: str
    variant: int
    expires: int  # Unix seconds


class PreviewTokens:
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def mint(self, rule: str, variant: int, now: int, hours: int = 24) -> str:
        if not 1 <= hours <= MAX_HOURS:
            raise ValueError(f"a preview lasts 1..{MAX_HOURS} hours")
        return self._signer.sign(msgpack.packb([rule, variant, now + hours * 3600]))

    def verify(self, token: str | None, now: int) -> Preview | None:
        """The preview a token grants, or None when it is forged, malformed or expired."""
        if not token or len(token) > 512:
            return None
        try:
            rule, variant, expires = msgpack.unpackb(self._signer.unsign(token))
        except (BadData, ValueError, TypeError, msgpack.UnpackException):
            return None
        if not isinstance(rule, str) or not isinstance(variant, int) or not isinstance(expires, int):
            return None
        return Preview(rule, variant, expires) if expires >= now else None
