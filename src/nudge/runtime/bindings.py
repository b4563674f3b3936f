"""The Worker's bindings wrapped once: KV, Analytics Engine, Queues, the edge cache and the
redemption ledger (a Durable Object), plus the Worker's vars. Values cross as plain Python (bytes,
str, int); a failing JS call raises WorkersError, the one error nudge sees from the runtime.

The local-only hooks (NUDGE_LOCAL_* vars that only `make dev` and the tests set, never
wrangler.toml) are at the end: a KV that fails or is slow, a short queue delay, events echoed to
the log, a ledger outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import js
from pyodide.ffi import JsException, to_js

try:
    from pyodide.ffi import jsnull  # JS null, where the runtime keeps it apart from undefined
except ImportError:  # older Pyodide: null converts to None
    jsnull = None

from nudge.events import Event
from nudge.failures import fail_open
from nudge.kv_keys import PROFILE_TTL, ledger_name
from nudge.ledger import LEDGER_BINDING, UNAVAILABLE, Ledger, LedgerClaim, verdict
from nudge.settings import whole_number

__all__ = ["LEDGER_TIMEOUT", "Kv", "WorkersError", "absent", "cache_match", "cache_put", "edge_cache",
           "env_int", "env_str", "html_content", "js_errors", "ledger_redeem", "ledger_used", "local", "open_ledger",
           "opts", "queue_delay", "record", "started", "to_bytes"]

log = logging.getLogger("nudge")

LEDGER_TIMEOUT = 5  # seconds a redemption waits for the ledger before refusing (fail closed)


class WorkersError(RuntimeError):
    """A call into the Workers runtime failed (KV, Queues, the cache, the ledger, fetch, a stream):
    the JS error, with its message as the runtime gave it."""


@contextmanager
def js_errors() -> Iterator[None]:
    """The one mapping of a JS exception to WorkersError (the JsException is its __cause__)."""
    try:
        yield
    except JsException as exc:
        raise WorkersError(str(exc)) from exc


def absent(value: Any) -> bool:
    """JS null/undefined as Pyodide hands them over (None, or jsnull where kept apart)."""
    return value is None or value is jsnull


def opts(**kwargs: Any) -> Any:
    """A JS options object ({status, headers, ...}) from keyword arguments."""
    return to_js(kwargs, dict_converter=js.Object.fromEntries)


_html_options: Any = None


def html_content() -> Any:
    """HTMLRewriter's `{html: true}`, made once per isolate on first use (not at import: JS
    objects must not be held from the top level, which Workers snapshot)."""
    global _html_options
    if _html_options is None:
        _html_options = opts(html=True)
    return _html_options


def to_bytes(value: Any) -> bytes | None:
    """An ArrayBuffer / Uint8Array (or bytes) as bytes; None for null, undefined or anything else."""
    if absent(value):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if hasattr(value, "to_bytes"):
        return bytes(value.to_bytes())
    if hasattr(value, "to_py"):
        return bytes(value.to_py())
    return None


def env_str(env: Any, name: str) -> str:
    """A var of the Worker as a string, "" when unset."""
    return str(getattr(env, name, "") or "")


def env_int(env: Any, name: str, low: int, high: int, default: int) -> int:
    """A whole-number var of the Worker; the default when unset or out of range."""
    return whole_number(env_str(env, name), low, high, default)


def started(work: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
    """Starts `work` now, to be awaited later (the origin fetch and KV reads run side by side).
    Pyodide's event loop reports a task that fails before anyone awaits it as an unhandled exception
    (with a traceback, e.g. a KV read that throws while the origin is still answering); the done
    callback retrieves the failure, which the code that awaits the task then handles."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


# -- KV -------------------------------------------------------------------------------------------


class Kv:
    """env.NUDGE_KV as bytes in and out (WorkersError when a call fails). Values live
    NUDGE_PROFILE_TTL_DAYS (default 400) unless a put says otherwise."""

    def __init__(self, env: Any) -> None:
        self._kv = _kv_binding(env)
        self.ttl = env_int(env, "NUDGE_PROFILE_TTL_DAYS", 1, 3650, PROFILE_TTL // 86_400) * 86_400

    async def get(self, key: str) -> bytes | None:
        with js_errors():
            return to_bytes(await self._kv.get(key, "arrayBuffer"))

    async def put(self, key: str, value: bytes, ttl: int | None = None) -> None:
        with js_errors():
            await self._kv.put(key, to_js(value), opts(expirationTtl=ttl or self.ttl))

    async def put_forever(self, key: str, value: bytes) -> None:
        with js_errors():
            await self._kv.put(key, to_js(value))

    async def keep(self, key: str, value: bytes, ttl: int | None = None) -> None:
        """A put whose failure is logged, not raised (the page or message goes on without it)."""
        with fail_open("profile write failed", expected=True):
            await self.put(key, value, ttl)

    async def delete(self, key: str) -> None:
        with js_errors():
            await self._kv.delete(key)

    async def keys(self, prefix: str) -> list[str]:
        with js_errors():
            listed = await self._kv.list(opts(prefix=prefix))
        data = listed.to_py() if hasattr(listed, "to_py") else listed  # `.keys` is a dict method here
        return [str(key["name"]) for key in data["keys"]]


# -- Analytics Engine ------------------------------------------------------------------------------


def record(env: Any, ctx: Any, rules_version: str, events: list[Event], now: int) -> None:
    """Writes measurement events to Analytics Engine (NUDGE_EVENTS) after the response is sent.
    Without the binding nothing is recorded; a failing write is logged, never raised."""
    if not events:
        return
    dataset = getattr(env, "NUDGE_EVENTS", None)
    if absent(dataset):
        return
    echo = local(env, "NUDGE_LOCAL_EVENTS") == "log"
    ctx.waitUntil(_write_points(dataset, [e.data_point(rules_version, now) for e in events], echo))


async def _write_points(dataset: Any, points: list[dict[str, Any]], echo: bool) -> None:
    for point in points:
        with fail_open("event write failed", expected=True):  # measurement must never cost the shopper
            dataset.writeDataPoint(to_js(point, dict_converter=js.Object.fromEntries))
            if echo:  # the local runtime's Analytics Engine keeps nothing: tests and `make dev` read this
                print(json.dumps({"nudge": "event", "point": point}, separators=(",", ":")))


# -- Queues ----------------------------------------------------------------------------------------


def queue_delay(env: Any, seconds: int) -> Any:
    """Queues' {delaySeconds} for a send or retry (capped locally: NUDGE_LOCAL_QUEUE_DELAY_CAP)."""
    return opts(delaySeconds=_capped_delay(env, seconds))


# -- the edge cache --------------------------------------------------------------------------------


def edge_cache() -> Any | None:
    """caches.default, or None where the runtime has no cache."""
    cache = getattr(getattr(js, "caches", None), "default", None)
    return None if absent(cache) else cache


async def cache_match(cache: Any, key: str) -> Any | None:
    with js_errors():
        hit = await cache.match(key)
    return None if absent(hit) else hit


async def cache_put(cache: Any, key: str, response: Any) -> None:
    with js_errors():
        await cache.put(key, response)


# -- the redemption ledger (Durable Object) -------------------------------------------------------


def open_ledger(ctx: Any) -> Ledger:
    """The ledger over a Durable Object's SQLite storage (called in NudgeLedger's constructor)."""
    sql = ctx.storage.sql

    def run(query: str, *params: Any) -> list[list[Any]]:
        rows: list[list[Any]] = getattr(js.Array, "from")(sql.exec(query, *params).raw()).to_py()
        return rows

    return Ledger(run)


def _ledger(env: Any, rule_id: str) -> Any:
    """The stub of a rule's ledger object; raises LookupError without the binding (or when
    NUDGE_LOCAL_LEDGER_FAIL plays an outage)."""
    namespace: Any = getattr(env, LEDGER_BINDING, None)
    if absent(namespace):
        raise LookupError(f"no {LEDGER_BINDING} Durable Object binding (see wrangler.toml)")
    if local(env, "NUDGE_LOCAL_LEDGER_FAIL"):
        raise LookupError("the ledger is unreachable: NUDGE_LOCAL_LEDGER_FAIL")
    return namespace.get(namespace.idFromName(ledger_name(rule_id)))


async def ledger_redeem(env: Any, claim: LedgerClaim | None) -> str:
    """The ledger's verdict on a claim ("redeemed", "used", "ended"); "unavailable" when it could
    not be asked in LEDGER_TIMEOUT seconds: no offer is granted then (fail closed for money)."""
    if claim is None:
        return UNAVAILABLE  # not consulted: the engine answers without the ledger
    with fail_open("redemption ledger unavailable, offer refused", expected=True):  # an outage, a timeout
        call = _ledger(env, claim.rule).redeem(claim.key, claim.limit, claim.keep_until)
        return verdict(await asyncio.wait_for(_awaited(call), LEDGER_TIMEOUT))
    return UNAVAILABLE


async def ledger_used(env: Any, rule_id: str) -> int:
    """Redemptions of the rule today, as its ledger counts them (raises when it cannot be asked)."""
    with js_errors():
        return int(await asyncio.wait_for(_awaited(_ledger(env, rule_id).used()), LEDGER_TIMEOUT))


async def _awaited(promise: Any) -> Any:
    return await promise


# -- local-only hooks: vars that only `make dev` and the tests set, never wrangler.toml -----------


def local(env: Any, name: str) -> str:
    """A local-only hook's value, "" when unset (as it always is when deployed)."""
    value = getattr(env, name, None)
    return "" if absent(value) else str(value)


class _FaultyKv:
    """LOCAL ONLY. The KV binding as an outage makes it: each operation waits
    NUDGE_LOCAL_KV_DELAY_MS, and the ones named in NUDGE_LOCAL_KV_FAIL (`get,put`, or `all`) then
    fail with a JS error, as a real KV failure reaches the Worker. For the fault tests: workerd's
    local KV does not fail."""

    def __init__(self, kv: Any, fail: frozenset[str], delay: float) -> None:
        self._kv, self._fail, self._delay = kv, fail, delay

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        real = getattr(self._kv, operation)

        async def call(*args: Any) -> Any:
            if self._delay:
                await asyncio.sleep(self._delay)
            if operation in self._fail or "all" in self._fail:
                key = args[0] if args and isinstance(args[0], str) else ""
                await js.Promise.reject(js.Error.new(f'KV {operation}("{key}") failed: NUDGE_LOCAL_KV_FAIL'))
            return await real(*args)

        return call


def _kv_binding(env: Any) -> Any:
    """env.NUDGE_KV, or the same behind _FaultyKv when the LOCAL-ONLY fault hooks are set."""
    fail, delay = local(env, "NUDGE_LOCAL_KV_FAIL"), local(env, "NUDGE_LOCAL_KV_DELAY_MS")
    if not fail and not delay:
        return env.NUDGE_KV
    return _FaultyKv(env.NUDGE_KV, frozenset(fail.split(",")) - {""}, int(delay or 0) / 1000)


def _capped_delay(env: Any, seconds: int) -> int:
    """A queue delay, at most NUDGE_LOCAL_QUEUE_DELAY_CAP seconds when that (LOCAL-ONLY) is set:
    Queues wait in real time, also locally, so the tests see a 15-minute follow-up after seconds."""
    cap = local(env, "NUDGE_LOCAL_QUEUE_DELAY_CAP")
    return min(seconds, int(cap)) if cap.isdigit() else seconds
