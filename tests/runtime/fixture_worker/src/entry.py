"""Fixture Worker for tests/runtime: one route per runtime feature under test."""

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

from js import HTMLRewriter, Object, caches
from js import Request as JsRequest
from pyodide.ffi import JsException, create_proxy, to_js
from workers import Request, Response, WorkerEntrypoint, fetch

_body_handler = None


def _js(value):
    return to_js(value, dict_converter=Object.fromEntries)


def body_handler():
    """An HTMLRewriter element handler, made once so no proxy leaks per request."""
    global _body_handler
    if _body_handler is None:

        def element(el):
            el.append('<p id="injected">added at the edge</p>', _js({"html": True}))

        _body_handler = _js({"element": create_proxy(element)})
    return _body_handler


def describe(value):
    """Type name and a JSON-friendly rendering of a value that came back from KV."""
    if isinstance(value, memoryview):
        shown = bytes(value).hex()
    elif isinstance(value, bytes):
        shown = value.hex()
    elif isinstance(value, dict):
        shown = {k: describe(v) for k, v in value.items()}
    elif isinstance(value, list):
        shown = [describe(v) for v in value]
    else:
        shown = value
    return {"type": type(value).__name__, "value": shown}


async def cache_and_key(query):
    """The Cache (`caches.default` or `caches.open(cache)`) and the key of a /cache/* call.

    The key is a full URL, given as a string or (key_as=request) as a JS Request."""
    cache = await caches.open(query["cache"]) if "cache" in query else caches.default
    url = f"https://cache.fixture.test/{query['key']}"
    if query.get("key_as") == "request":
        return cache, JsRequest.new(url, _js({"method": query.get("method", "GET")}))
    return cache, url


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = url.path.strip("/").replace("/", "_") or "index"
        handler = getattr(self, f"route_{route}", None)
        if handler is None:
            return Response("no such route", status=404)
        return await handler(request, query)

    async def route_request(self, request, query):
        body = "" if request.method.value in ("GET", "HEAD") else await request.text()
        return Response.json(
            {
                "type": f"{type(request).__module__}.{type(request).__qualname__}",
                "is_workers_request": isinstance(request, Request),
                "method": request.method.value,
                "url": request.url,
                "cookie": request.headers.get("cookie"),
                "x_multi": request.headers.get("x-multi"),
                "cf_is_none": request.cf is None,
                "body": body,
            }
        )

    async def route_vars(self, request, query):
        return Response.json(
            {
                "GREETING": self.env.GREETING,
                "FIXTURE_SECRET": self.env.FIXTURE_SECRET,
                "FROM_CLI": self.env.FROM_CLI,
            }
        )

    async def route_kv_put(self, request, query):
        await self.env.FIXTURE_KV.put(query["key"], query["value"])
        return Response("stored")

    async def route_kv_get(self, request, query):
        value = await self.env.FIXTURE_KV.get(query["key"])
        return Response.json({"value": value})

    async def route_kv_try(self, request, query):
        """A KV get or put whose failure (local-edge --kv-fail) is reported, not raised."""
        kv = self.env.FIXTURE_KV
        try:
            if "value" in query:
                await kv.put(query["key"], query["value"])
                return Response.json({"stored": True})
            return Response.json({"value": await kv.get(query["key"])})
        except JsException as exc:
            return Response.json({"error": str(exc)}, status=503)

    async def route_kv_types(self, request, query):
        kv = self.env.FIXTURE_KV
        await kv.put("t:bytes", b"\x00\x01bin")
        await kv.put("t:str", "h\u00e9llo")
        await kv.put("t:json", '{"a": [1, 2]}')
        await kv.put("t:meta", "v", {"metadata": {"m": 1}})
        await kv.put("t:ttl", "x", expirationTtl=120)
        results = {
            "bytes_arrayBuffer": await kv.get("t:bytes", "arrayBuffer"),
            "str_text": await kv.get("t:str"),
            "str_arrayBuffer": await kv.get("t:str", "arrayBuffer"),
            "json_json": await kv.get("t:json", "json"),
            "missing": await kv.get("t:missing"),
            "meta": await kv.getWithMetadata("t:meta"),
            "list": await kv.list(prefix="t:"),
        }
        await kv.delete("t:str")
        results["deleted"] = await kv.get("t:str")
        return Response.json({k: describe(v) for k, v in results.items()})

    async def route_wait(self, request, query):
        key = query["key"]

        async def later():
            await asyncio.sleep(0.3)
            await self.env.FIXTURE_KV.put(key, "done")

        if query.get("via") == "module":
            from workers import wait_until

            wait_until(later())
        else:
            self.ctx.waitUntil(later())
        return Response("scheduled")

    async def route_slow(self, request, query):
        await asyncio.sleep(int(query.get("ms", "500")) / 1000)
        return Response("slept")

    async def route_rewrite(self, request, query):
        upstream = await fetch(f"{self.env.UPSTREAM}/page?gate={query.get('gate', '')}")
        rewriter = HTMLRewriter.new().on("body", body_handler())
        return Response(rewriter.transform(upstream.js_object))

    async def route_gzip(self, request, query):
        return await fetch(f"{self.env.UPSTREAM}/gz")

    async def route_cookies(self, request, query):
        return Response(
            "cookies",
            headers=[
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/; HttpOnly"),
                ("Content-Type", "text/plain"),
            ],
        )

    async def route_cache_put(self, request, query):
        cache, key = await cache_and_key(query)
        headers = [("Content-Type", "text/plain"), ("X-Fixture", "cached")]
        if "cc" in query:
            headers.append(("Cache-Control", query["cc"]))
        if "cookie" in query:
            headers.append(("Set-Cookie", query["cookie"]))
        status = int(query.get("status", "200"))
        response = Response(query.get("body", "cached body"), status=status, headers=headers)
        try:
            await cache.put(key, response.js_object)
        except JsException as exc:
            return Response(f"put failed: {exc}", status=400)
        return Response("put")

    async def route_cache_match(self, request, query):
        cache, key = await cache_and_key(query)
        cached = await cache.match(key)
        if cached is None:
            return Response("miss", headers={"X-Cache-Miss": "1"})
        return Response(cached)  # a workers.Response around the cached JS Response

    async def route_cache_delete(self, request, query):
        cache, key = await cache_and_key(query)
        return Response.json({"deleted": await cache.delete(key)})

    async def route_cache_through(self, request, query):
        """A read-through cache in front of the upstream, keyed by the incoming request."""
        cache = caches.default
        cached = await cache.match(request.js_object)
        if cached is not None:
            return Response(cached)
        upstream = await fetch(f"{self.env.UPSTREAM}/cacheable")
        self.ctx.waitUntil(cache.put(request.js_object, upstream.js_object.clone()))
        return upstream

    async def route_events_write(self, request, query):
        """Writes the data points of the JSON body to the FIXTURE_EVENTS dataset.

        Body: {"points": [point, ...], "via": "to_js" | "dict"}. A blob or index given as
        {"hex": "..."} is sent as bytes. "to_js" converts the point itself (as src/nudge
        does), "dict" leaves the conversion to the SDK's binding wrapper."""
        body = json.loads(await request.text())
        dataset = self.env.FIXTURE_EVENTS
        results = []
        for point in body["points"]:
            for name in ("blobs", "indexes"):
                if isinstance(point.get(name), list):
                    point[name] = [bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for v in point[name]]
            try:
                if body.get("via") == "dict":
                    returned = dataset.writeDataPoint(point)
                else:
                    returned = dataset.writeDataPoint(_js(point))
            except JsException as exc:
                results.append({"error": str(exc)})
            else:
                results.append({"returned": repr(returned)})
            await asyncio.sleep(0)  # let other requests' writes interleave with ours
        return Response.json({"binding": type(dataset).__name__, "results": results})

    async def route_boom(self, request, query):
        self.ctx.passThroughOnException()
        raise RuntimeError("boom (the upstream should answer instead)")

    async def route_crash(self, request, query):
        raise RuntimeError("crash")
