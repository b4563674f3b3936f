"""The answers nudge gives itself, on its own paths under /_nudge/: their shape (`Reply`, turned into
a JS Response by the runtime) and the few kinds every endpoint builds - JSON and a no-store 303.

Its own module so the endpoint modules (redemption, visit_reports, endpoint_replies) and the engine
share one spelling of a redirect without importing one another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PREFIX = "/_nudge/"
BEACON_PATH = PREFIX + "beacon"
REDEEM_PATH = PREFIX + "redeem"
CLIENT_PATH = PREFIX + "client.js"
STYLE_PATH = PREFIX + "nudge.css"
HEALTH_PATH = PREFIX + "health"
EXPLAIN_PATH = PREFIX + "explain"
PREVIEW_PATH = PREFIX + "preview"
FORGET_PATH = PREFIX + "forget"

NO_STORE = ("Cache-Control", "no-store")
IMMUTABLE = ("Cache-Control", "public, max-age=31536000, immutable")  # versioned by a ?v= digest


@dataclass
class Reply:
    """A response nudge answers itself (endpoints under /_nudge/)."""

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(status: int, data: object, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, json.dumps(data), headers=headers or [])


def redirect(location: str, *set_cookies: str) -> Reply:
    """303 to `location`, never cached (it may set cookies for this browser only)."""
    headers = [("Location", location), NO_STORE] + [("Set-Cookie", cookie) for cookie in set_cookies]
    return Reply(303, "", "text/plain", headers)
