"""The shop's side of nudge's follow-ups: a webhook receiver standing in for an email tool.

It verifies each delivery's `X-Nudge-Signature` with the shared NUDGE_WEBHOOK_SECRET (as a real
receiver must: nudge.followup.verify shows how), answers 200 once per event id (a redelivery is
acknowledged but not recorded twice), and lists what arrived at /webhooks, so `make dev` shows the
whole loop. DEMO_WEBHOOK_STATUS=500 (or 400) makes it refuse deliveries, for trying retries.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nudge.followups.webhook import SIGNATURE_HEADER, verify

MAX_KEPT = 100


@dataclass
class Delivery:
    received: float
    event: str
    verified: bool
    payload: Any
    duplicate: bool = False


@dataclass
class Inbox:
    deliveries: list[Delivery] = field(default_factory=list)

    def seen(self, event: str) -> bool:
        return any(d.event == event and d.verified for d in self.deliveries)

    def add(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        del self.deliveries[:-MAX_KEPT]


def secret() -> bytes:
    return os.environ.get("NUDGE_WEBHOOK_SECRET", "").encode()


async def receive(request: Request) -> Response:
    """POST /webhooks/nudge."""
    inbox: Inbox = request.app.state.inbox
    forced = os.environ.get("DEMO_WEBHOOK_STATUS")
    if forced and forced.isdigit():
        return JSONResponse({"error": "refused on purpose (DEMO_WEBHOOK_STATUS)"}, status_code=int(forced))
    body = await request.body()
    ok = bool(secret()) and verify(secret(), body, request.headers.get(SIGNATURE_HEADER), int(time.time()))
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    event = str(payload.get("eventId", "")) if isinstance(payload, dict) else ""
    duplicate = ok and inbox.seen(event)
    inbox.add(Delivery(time.time(), event, ok, payload, duplicate))
    if not ok:
        return JSONResponse({"error": "bad or missing signature"}, status_code=401)
    return JSONResponse({"ok": True, "duplicate": duplicate})


async def listing(request: Request) -> Response:
    """GET /webhooks: what arrived (HTML, or JSON with ?format=json)."""
    from demo_shop.app import render  # the shop's page chrome

    inbox: Inbox = request.app.state.inbox
    rows = list(reversed(inbox.deliveries))
    if request.query_params.get("format") == "json":
        return JSONResponse([{"received": d.received, "event": d.event, "verified": d.verified,
                              "duplicate": d.duplicate, "payload": d.payload} for d in rows])
    shown = [(d, json.dumps(d.payload, indent=2)) for d in rows]
    return render(request, "webhooks.html", {"deliveries": shown, "configured": bool(secret())})
