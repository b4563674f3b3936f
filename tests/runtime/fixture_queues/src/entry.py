"""Fixture Worker for tests/runtime/test_local_queues.py: a queue producer and consumer.

fetch enqueues (POST /send, POST /send-batch) and reads back what the consumer recorded
(GET /seen). The consumer records every delivery in KV, then acks, retries or throws as the
message body asks: {"tag": ..., "action": ..., "delay": ..., "until": ...}; with "until": n
the action applies to the first n-1 deliveries and later ones are acked.
"""

import asyncio
import json
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from pyodide.ffi import JsException
from workers import Response, WorkerEntrypoint


def plain(value):
    """A JSON-friendly copy of a value from JS (bytes as {"hex": ...}, datetimes as Unix seconds)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (memoryview, bytes)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = url.path.strip("/").replace("/", "_").replace("-", "_") or "index"
        handler = getattr(self, f"route_{route}", None)
        if handler is None:
            return Response("no such route", status=404)
        return await handler(request, query)

    async def route_send(self, request, query):
        """Sends the request body: kind=json (parsed), text (a str) or bytes."""
        queue = getattr(self.env, query.get("queue", "JOBS"))
        kind = query.get("kind", "json")
        if kind == "bytes":
            body = await request.bytes()
        elif kind == "text":
            body = await request.text()
        else:
            body = json.loads(await request.text())
        options = {}
        if "delay" in query:
            options["delaySeconds"] = int(query["delay"])
        if "content_type" in query:
            options["contentType"] = query["content_type"]
        try:
            result = await queue.send(body, **options)
        except JsException as exc:
            return Response.json({"error": str(exc)})
        return Response.json({"result": plain(result.metadata.metrics) if result else None})

    async def route_send_batch(self, request, query):
        """Sends {"messages": [{"body": ..., "contentType": ..., "delaySeconds": ...}, ...]}."""
        queue = getattr(self.env, query.get("queue", "JOBS"))
        messages = json.loads(await request.text())["messages"]
        options = {"delaySeconds": int(query["delay"])} if "delay" in query else {}
        try:
            await queue.sendBatch(messages, **options)
        except JsException as exc:
            return Response.json({"error": str(exc)})
        return Response.json({"sent": len(messages)})

    async def route_seen(self, request, query):
        """The deliveries recorded for a tag, in delivery order."""
        listed = await self.env.SEEN.list(prefix=f"got:{query['tag']}:")
        records = [json.loads(await self.env.SEEN.get(key["name"])) for key in listed["keys"]]
        records.sort(key=lambda r: r["order"])
        return Response.json(records)

    async def route_waited(self, request, query):
        return Response.json({"value": await self.env.SEEN.get(f"waited:{query['tag']}")})

    async def queue(self, batch):
        ids = [message.id for message in batch.messages]
        batch_actions = set()
        batch_delay = {}
        for message in batch.messages:
            body = message.body
            spec = body if isinstance(body, dict) else {}
            tag = spec.get("tag", "plain")
            count = int(await self.env.SEEN.get("count") or "0") + 1
            await self.env.SEEN.put("count", str(count))
            record = {
                "order": count,
                "id": message.id,
                "attempts": message.attempts,
                "timestamp": message.timestamp.timestamp(),
                "received": time.time(),
                "queue": batch.queue,
                "batch": ids,
                "body": plain(body),
                "body_type": type(body).__name__,
            }
            await self.env.SEEN.put(f"got:{tag}:{message.attempts}:{message.id}", json.dumps(record))

            action = spec.get("action", "none")
            if "until" in spec and message.attempts >= spec["until"]:
                action = "ack"  # the action applies to the first until-1 deliveries
            delay = {"delaySeconds": spec["delay"]} if "delay" in spec else {}
            if action == "ack":
                message.ack()
            elif action == "retry":
                message.retry(**delay)
            elif action == "wait":
                self.ctx.waitUntil(self.later(f"waited:{tag}", str(message.attempts)))
            elif action == "wait-fail":
                self.ctx.waitUntil(self.fail_later())
            batch_actions.add(action)
            if action == "retry-all":
                batch_delay = delay

        if "ack-all" in batch_actions:
            batch.ackAll()
        if "retry-all" in batch_actions:
            batch.retryAll(**batch_delay)
        if "throw" in batch_actions:
            raise RuntimeError("fixture consumer failed on purpose")

    async def later(self, key, value):
        await asyncio.sleep(0.2)
        await self.env.SEEN.put(key, value)

    async def fail_later(self):
        await asyncio.sleep(0.05)
        raise ValueError("waitUntil work failed on purpose")
