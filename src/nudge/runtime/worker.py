"""The Worker's handlers, as src/entry.py hands them on: `handle` (fetch), `handle_queue` (the
follow-up consumer) and `open_ledger` (the redemption ledger's Durable Object storage).

nudge fails open: if its own logic fails, the shopper gets the origin's response and the error is
logged; origin errors pass through as they are. An exception that escapes nudge gets the origin's
page through `_fallback` (the request stripped of nudge's cookies and headers), never through the
runtime's passThroughOnException.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import SplitResult, urlsplit

import js

from nudge.engine import PREFIX
from nudge.failures import fail_open
from nudge.runtime.bindings import local, open_ledger
from nudge.runtime.endpoints import endpoint
from nudge.runtime.http import drain, edge_error, origin_request
from nudge.runtime.isolate import engine_or_none, refresh_rules_if_due
from nudge.runtime.proxy import page
from nudge.runtime.queue import handle_queue
from nudge.timing import OwnTime

__all__ = ["handle", "handle_queue", "open_ledger"]


async def handle(request: Any, env: Any, ctx: Any) -> Any:
    """The Worker's fetch handler. Returns a JS Response (the runtime passes it through as is;
    wrapping constructed responses in `workers.Response` trips a Pyodide 0.29 bug). Fails open
    without leaking: an exception that escapes nudge gets the origin's page through `_fallback`,
    never the runtime's passThroughOnException (it forwards the original request: nudge's cookies
    and any X-Nudge-* header the browser sent would reach the origin)."""
    clock = OwnTime()  # nudge's own time on this request
    js_req = getattr(request, "js_object", request)  # workers.Request or a JS Request
    parts = urlsplit(str(js_req.url))
    with fail_open(f"failed on {js_req.method} {parts.path}; answering through the fallback"):
        app = engine_or_none(env)
        if app is not None:
            app = await clock.waiting(refresh_rules_if_due(app, env, ctx))  # waits only on an isolate's first request
        if parts.path.startswith(PREFIX):
            answer = await endpoint(js_req, env, ctx, parts, app, int(time.time()))
            await drain(js_req)
            return answer
        if local(env, "NUDGE_LOCAL_CRASH") == "pages":  # LOCAL ONLY: the fail-open path, for the tests
            raise RuntimeError("NUDGE_LOCAL_CRASH: nudge fails on this page")
        return await page(js_req, env, ctx, parts, app, clock)
    return await _fallback(js_req, env, parts)


async def _fallback(js_req: Any, env: Any, parts: SplitResult) -> Any:
    """What the shopper gets when nudge itself failed: the origin's answer to the request stripped
    of nudge's cookies and X-Nudge-* headers (as every forwarded request is). nudge's own endpoints
    are not the origin's: they answer 500. A request whose body nudge already sent on (or read)
    cannot be sent again: 502, rather than a POST the origin might apply twice."""
    if parts.path.startswith(PREFIX):
        return edge_error(500, "Internal Server Error: nudge could not answer\n")
    with fail_open("the fallback could not reach the origin"):
        if bool(js_req.bodyUsed):
            return edge_error(502, "Bad Gateway: the request could not be passed on\n")
        target = str(env.ORIGIN_URL).rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        return await js.fetch(await origin_request(js_req, target, parts, {}))
    return edge_error(502, "Bad Gateway: the shop could not be reached\n")
