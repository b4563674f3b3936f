"""Follow-ups on Cloudflare Queues: scheduling and cancelling them after a response (the producer),
and the consumer that sends those that came due to the shop's webhook, retries with backoff, and
dead-letters what the receiver refuses. What to do with a message is nudge.followups' decision.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import js

from nudge.engine import Engine
from nudge.events import Event
from nudge.failures import fail_open
from nudge.followups.dispatch import attempt_log_line, next_step
from nudge.followups.messages import FollowUp, IssuedCode, MessageError, Pending
from nudge.followups.planning import FollowUpPlan
from nudge.followups.webhook import SIGNATURE_HEADER, WEBHOOK_TIMEOUT, backoff, delivery_outcome, issue_code, sign
from nudge.kv_keys import code_key, contact_key, pending_key, pending_prefix, profile_key
from nudge.rules.model import Rule
from nudge.runtime.bindings import (
    Kv,
    WorkersError,
    absent,
    env_int,
    env_str,
    js_errors,
    opts,
    queue_delay,
    record,
)
from nudge.runtime.http import new_headers
from nudge.runtime.isolate import ConfigError, engine_for, refresh_rules_for_batch
from nudge.signing import BadData
from nudge.visitor.profile import decode_profile
from nudge.visitor.session import COOKIE_NAME

__all__ = ["erase_followups", "follow_up", "handle_queue", "withdrawn"]

log = logging.getLogger("nudge")


# -- the producer ---------------------------------------------------------------------------------


def follow_up(env: Any, ctx: Any, plan: FollowUpPlan, now: int) -> None:
    """Schedules and cancels follow-ups after the response (KV state, then the delayed message)."""
    if plan:
        ctx.waitUntil(_apply_followups(env, plan, now))


async def _apply_followups(env: Any, plan: FollowUpPlan, now: int) -> None:
    """Each cancellation and schedule is a read-merge-write of the rule's pending state (keeping
    its send history for caps); a message is enqueued only once its state is stored."""
    kv = Kv(env)
    for rule_id, reason in plan.cancel:
        key = pending_key(plan.visitor, rule_id)
        try:
            pending = Pending.decode(await kv.get(key))
            if pending is not None and pending.event and not pending.cancelled:
                await kv.keep(key, pending.cancel(reason).encode())
        except WorkersError as exc:
            log.error("nudge: cancelling follow-up %s failed: %s", rule_id, exc)
    for message in plan.schedule:
        key = pending_key(message.visitor, message.rule)
        try:
            pending = Pending.decode(await kv.get(key)) or Pending()
            if pending.in_flight(message):  # one message per event id
                continue
            await kv.keep(key, pending.scheduled(message).encode())
            with js_errors():
                await env.NUDGE_FOLLOWUPS.send(message.to_json(), queue_delay(env, message.delay(now)))
        except WorkersError as exc:
            log.error("nudge: scheduling follow-up %s failed: %s", message.rule, exc)


def withdrawn(env: Any, ctx: Any, app: Engine, cookies: dict[str, str]) -> None:
    """A visitor who withdrew consent (their old cookie still arrives once, before it is erased):
    nothing pending for them may be sent."""
    try:
        visitor = app.codec.decode(cookies[COOKIE_NAME]).visitor_id
    except BadData:
        return
    ctx.waitUntil(erase_followups(env, visitor))


async def erase_followups(env: Any, visitor: str) -> None:
    """Deletes a visitor's pending follow-ups and the customer id kept for them."""
    kv = Kv(env)
    with fail_open("erasing follow-ups failed", expected=True):  # forgetting the rest must not fail on this
        for key in await kv.keys(pending_prefix(visitor)):
            await kv.delete(key)
        await kv.delete(contact_key(visitor))


# -- the consumer ---------------------------------------------------------------------------------


async def handle_queue(batch: Any, env: Any, ctx: Any) -> None:
    """The Worker's queue handler: sends the follow-ups that came due, if they still hold. Each
    message is acked (sent, skipped, or dead-lettered for a 4xx) or retried with backoff (5xx,
    timeout, or nudge itself failing); after max_retries Queues moves it to the dead letter queue."""
    try:
        app = engine_for(env)
    except ConfigError as exc:
        log.error("nudge: follow-ups wait: %s", exc)
        batch.retryAll(queue_delay(env, backoff(1)))
        return
    app = await refresh_rules_for_batch(app, env)
    for message in batch.messages:
        attempts = int(message.attempts or 1)
        with fail_open("follow-up delivery failed; retrying") as delivery:
            await _deliver(app, env, ctx, message, attempts)
        if delivery.failed:
            message.retry(queue_delay(env, backoff(attempts)))


async def _deliver(app: Engine, env: Any, ctx: Any, queued: Any, attempts: int) -> None:
    """One message: dead-lettered when unreadable, else skipped, counted as holdout, left for later
    or sent, as nudge.followups.dispatch decides from what KV holds."""
    now = int(time.time())
    try:
        message = FollowUp.from_json(queued.body)
    except MessageError as exc:
        print(attempt_log_line(None, attempts, "dead_letter", reason=str(exc)))
        await _dead_letter(env, str(queued.body)[:8192], str(exc))
        queued.ack()
        return
    rule = app.ruleset.followup(message.rule)
    kv = Kv(env)
    key = pending_key(message.visitor, message.rule)
    pending_raw, profile_raw, contact_raw = await asyncio.gather(
        kv.get(key), kv.get(profile_key(message.visitor)), kv.get(contact_key(message.visitor)))
    pending, profile = Pending.decode(pending_raw), decode_profile(profile_raw)
    contact = contact_raw.decode("utf-8", "replace") if contact_raw else None
    step, reason = next_step(message, rule, pending, profile.last_order if profile else 0, contact, now,
                             app.followups_enabled)
    if step == "skip" or rule is None or pending is None or contact is None:
        print(attempt_log_line(message, attempts, "skipped", reason=reason))
        queued.ack()
    elif step == "holdout":  # counted as "would have sent", never sent
        await kv.keep(key, pending.delivered(message, now).encode())
        record(env, ctx, app.rules_version, [Event("exposure", message.visitor, rule.id, 0, "holdout", "followup")],
               now)
        print(attempt_log_line(message, attempts, "holdout"))
        queued.ack()
    elif step == "wait":
        print(attempt_log_line(message, attempts, "retry", reason=reason))
        queued.retry(queue_delay(env, backoff(attempts)))
    else:
        await _send(app, env, ctx, queued, message, rule, pending, contact, attempts, now)


async def _send(app: Engine, env: Any, ctx: Any, queued: Any, message: FollowUp, rule: Rule, pending: Pending,
                contact: str, attempts: int, now: int) -> None:
    """POSTs the signed message to the webhook; acks, retries or dead-letters by the answer."""
    code = await _issued_code(env, app, rule, message, now)
    data = json.dumps(app.followup_body(message, contact, code, now), separators=(",", ":")).encode()
    timeout = env_int(env, "NUDGE_WEBHOOK_TIMEOUT", 1, 30, WEBHOOK_TIMEOUT)
    secret = env_str(env, "NUDGE_WEBHOOK_SECRET").encode()
    status = await _post_webhook(env_str(env, "NUDGE_WEBHOOK_URL"), data, sign(secret, data, now), message.event,
                                 timeout)
    result = delivery_outcome(status)
    print(attempt_log_line(message, attempts, result, status=status))
    if result == "delivered":
        await Kv(env).keep(pending_key(message.visitor, message.rule), pending.delivered(message, now).encode())
        record(env, ctx, app.rules_version, [Event(kind, message.visitor, rule.id, 0, "treatment", "followup")
                                             for kind in ("exposure", "impression")], now)
        queued.ack()
    elif result == "retry":
        queued.retry(queue_delay(env, backoff(attempts)))
    else:  # the receiver refused it: retrying cannot help
        await _dead_letter(env, message.to_json(), f"webhook answered {status}")
        queued.ack()


async def _issued_code(env: Any, app: Engine, rule: Rule, message: FollowUp, now: int) -> IssuedCode | None:
    """The follow-up's code, its details stored in KV once (a retry finds it as is); whether it
    was used is the redemption ledger's to say, not KV's."""
    code = issue_code(app.code_secret, rule, message, now)
    if code is None:
        return None
    kv = Kv(env)
    stored = IssuedCode.decode(await kv.get(code_key(code.code)))
    if stored is not None:
        return stored
    await kv.keep(code_key(code.code), code.encode(), max(60, code.expires - now))
    return code


async def _post_webhook(url: str, body: bytes, signature: str, event: str, timeout: int) -> int | None:
    """POSTs the signed body; the status, or None for a timeout (`timeout` seconds, then
    abandoned) or a network failure."""
    headers = new_headers()
    headers.set("content-type", "application/json")
    headers.set(SIGNATURE_HEADER, signature)
    headers.set("x-nudge-event", event)
    try:
        with js_errors():
            resp = await js.fetch(url, opts(method="POST", headers=headers, body=body.decode("utf-8"),
                                            redirect="manual", signal=js.AbortSignal.timeout(timeout * 1000)))
        status = int(resp.status)
        if not absent(resp.body):  # the answer's body is of no interest
            try:
                with js_errors():
                    await resp.body.cancel()
            except WorkersError:
                pass
        return status
    except WorkersError as exc:
        log.warning("nudge: webhook attempt failed: %s", exc)
        return None


async def _dead_letter(env: Any, body: str, reason: str) -> None:
    """Puts a follow-up nobody will accept on the dead letter queue, with the reason."""
    queue: Any = getattr(env, "NUDGE_DEAD_LETTERS", None)
    if absent(queue):
        log.error("nudge: follow-up dropped (%s); no NUDGE_DEAD_LETTERS binding", reason)
        return
    try:
        with js_errors():
            await queue.send(json.dumps({"reason": reason, "message": body}))
    except WorkersError as exc:
        log.error("nudge: dead-lettering a follow-up failed: %s", exc)
