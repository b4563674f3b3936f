"""A pass-through Python Worker: the request's path and query fetched from ORIGIN_URL, the origin's
response returned unchanged (a JS Response, as nudge returns its own: no Python wrapping)."""

from urllib.parse import urlsplit

import js
from workers import WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        js_req = getattr(request, "js_object", request)
        parts = urlsplit(str(js_req.url))
        target = str(self.env.ORIGIN_URL).rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        return await js.fetch(js.Request.new(target, js_req))
