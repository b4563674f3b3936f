"""What an isolate keeps between requests: its Engine (built once from the Worker's vars, again only
when they change, and replaced by a new one when newly published rules arrive), when it last looked
for them, and its memory: which offers' daily budgets ran out and the product facts learned from
pages (`memory`, an IsolateMemory the runtime hands to the Engine calls that read it). The Engine
itself is configuration and decisions; the state the runtime changes over an isolate's life lives
here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from nudge.delivery.unshared_pages import UnsharedPages
from nudge.engine import Engine
from nudge.failures import fail_open
from nudge.isolate_memory import IsolateMemory
from nudge.kv_keys import POINTER_KEY, blob_key
from nudge.rules.blob import load_blob, rules_version
from nudge.rules.load import RuleError, load_ruleset
from nudge.rules.model import RuleSet
from nudge.runtime.bindings import Kv, WorkersError, absent, env_int, env_str, ledger_used, started
from nudge.settings import ENGINE_VARS, ConfigError, Settings, followups_problem, settings_from
from nudge.signing import BadData
from nudge.visitor.recent_profiles import RecentProfiles

__all__ = ["ConfigError", "engine_for", "engine_or_none", "memory", "recent_profiles", "refresh_rules_for_batch",
           "refresh_rules_if_due", "unshared_pages"]

log = logging.getLogger("nudge")

RULES_REFRESH = 30  # seconds between looks for newly published rules (NUDGE_RULES_REFRESH_SECONDS)
FIRST_RULES_BUDGET = 0.2  # seconds an isolate's first request waits for the published rules


class _Isolate:
    """The isolate's mutable state (one instance per isolate: module state survives requests)."""

    def __init__(self) -> None:
        self.config: tuple[str, ...] | None = None  # the ENGINE_VARS the engine was built from
        self.engine: Engine | None = None
        self.rules_checked = 0.0  # time.monotonic() of the last look for published rules; 0: never
        self.refused: set[str] = set()  # why nudge could not start, each said once per isolate


_isolate = _Isolate()
memory = IsolateMemory()  # spent budgets and learned product facts: they outlive every Engine (isolate_memory.py)
recent_profiles = RecentProfiles()  # profiles read or written in the last minute (visitor/recent_profiles.py)
unshared_pages = UnsharedPages()  # pages not looked up in the edge cache for now (delivery/unshared_pages.py)


def _bundled_rules() -> tuple[RuleSet, str] | Exception:
    """The rule set deployed with the Worker, parsed and compiled at import, so the memory snapshot
    Workers take of the top level holds it (an isolate's first request does not parse TOML). No
    clock or randomness here: whatever import computes is frozen into every isolate. An unusable
    set is kept as the error: the first request logs it and passes through (fail open)."""
    from nudge import _bundle  # generated at build time (scripts/build_bundle.py)

    try:
        return load_ruleset(_bundle.RULE_FILES), "bundled:" + rules_version(_bundle.RULE_FILES)
    except Exception as exc:  # reported once per isolate by engine_or_none, never at import
        return exc


_BUNDLED = _bundled_rules()


def engine_for(env: Any) -> Engine:
    """The isolate's Engine (rule set parsed once; rebuilt only if the vars change). Raises
    ConfigError when the Worker lacks what nudge needs."""
    config = tuple(env_str(env, name) for name in ENGINE_VARS)
    if _isolate.engine is None or _isolate.config != config:
        settings = settings_from(dict(zip(ENGINE_VARS, config, strict=True)))
        _isolate.engine, _isolate.config = _built(settings, env), config
        _isolate.rules_checked = 0.0  # a new engine starts from the bundled rules: look at once
    return _isolate.engine


def _built(settings: Settings, env: Any) -> Engine:
    from nudge import _bundle

    if isinstance(_BUNDLED, Exception):  # the same object each time: a bare raise would grow its traceback
        raise _BUNDLED.with_traceback(None)
    ruleset, bundled = _BUNDLED
    return Engine(ruleset, settings.secrets, _bundle.CLIENT_JS, settings.consent, settings.edge_cart, bundled,
                  settings.shadow, settings.explain_token, followups_enabled=_followups_on(settings, env),
                  shop_secret=settings.shop_secret)


def _followups_on(settings: Settings, env: Any) -> bool:
    """Follow-ups need the queue binding, a usable webhook URL and its signing secret; anything
    less turns them off with one clear log line (pages are unaffected)."""
    problem = followups_problem(settings, has_queue=not absent(getattr(env, "NUDGE_FOLLOWUPS", None)))
    if problem:
        log.error("nudge: follow-ups are off: %s", problem)
    return bool(settings.webhook_url) and problem is None


def engine_or_none(env: Any) -> Engine | None:
    """The isolate's Engine, or None when nudge cannot run: then every response is the origin's,
    untouched, and one log line says why (never a default secret: no secret, no personalization)."""
    try:
        return engine_for(env)
    except ConfigError as exc:
        if str(exc) not in _isolate.refused:
            _isolate.refused.add(str(exc))
            log.error("nudge: %s; personalization is off, every request passes through to the origin", exc)
    except Exception as exc:  # fail open, said once: e.g. an unusable bundled rule set
        if repr(exc) not in _isolate.refused:
            _isolate.refused.add(repr(exc))
            log.exception("nudge: cannot start; passing requests through")
    return None


async def refresh_rules_if_due(engine: Engine, env: Any, ctx: Any) -> Engine:
    """At most every NUDGE_RULES_REFRESH_SECONDS (default 30), look for newly published rules in
    the background; such a request keeps the rule set it has, later ones get the new Engine. An
    isolate's first request waits up to FIRST_RULES_BUDGET for them: a cold isolate would otherwise
    decide (and count exposures) with the bundled rules, which are older than what was published
    since the deploy. Returns the Engine this request goes on with."""
    if not _rules_due(env):
        return engine
    first = _isolate.rules_checked == 0.0
    _isolate.rules_checked = time.monotonic()
    refresh = started(_refresh_rules(env, engine))
    if first:
        with fail_open("loading the published rules failed"):  # the page goes on with the rules it has
            try:
                await asyncio.wait_for(asyncio.shield(refresh), FIRST_RULES_BUDGET)
                engine = _isolate.engine or engine
            except TimeoutError:
                log.warning("nudge: published rules slower than %s s; this request uses %s", FIRST_RULES_BUDGET,
                            engine.rules_version)
    ctx.waitUntil(refresh)
    ctx.waitUntil(_refresh_budgets(env, engine))
    return engine


async def refresh_rules_for_batch(engine: Engine, env: Any) -> Engine:
    """The queue consumer's look for published rules, awaited (a batch is not in a hurry); the
    Engine the batch goes on with."""
    if not _rules_due(env):
        return engine
    _isolate.rules_checked = time.monotonic()
    await _refresh_rules(env, engine)
    return _isolate.engine or engine


def _rules_due(env: Any) -> bool:
    """Time to look for newly published rules: the isolate never has, or not for
    NUDGE_RULES_REFRESH_SECONDS (default 30)."""
    every = env_int(env, "NUDGE_RULES_REFRESH_SECONDS", 1, 3600, RULES_REFRESH)
    return _isolate.rules_checked == 0.0 or time.monotonic() - _isolate.rules_checked >= every


async def _refresh_rules(env: Any, engine: Engine) -> None:
    """Makes the published rule set the pointer names, when it is new, the isolate's (in a new
    Engine); `engine` (the bundled set to start with) stays when KV is empty, unreachable or holds
    something unusable."""
    kv = Kv(env)
    try:
        pointer = await kv.get(POINTER_KEY)
        if not pointer:
            return
        version = pointer.decode("ascii").strip()
        if version == engine.rules_version:
            return
        blob = await kv.get(blob_key(version))
        if blob is None:
            raise RuleError(POINTER_KEY, "-", f"names {version}, which is not in KV")
        loaded, ruleset = load_blob(blob)
    except (WorkersError, BadData, RuleError, UnicodeDecodeError) as exc:
        log.error("nudge: published rules unusable (%s); keeping %s", exc, engine.rules_version)
        return
    if _isolate.engine is engine:  # else a later look (or new vars) replaced it meanwhile: that one stays
        _isolate.engine = engine.with_ruleset(ruleset, loaded)
        log.warning("nudge: now serving published rules %s", loaded)


async def _refresh_budgets(env: Any, engine: Engine) -> None:
    """Marks the offers whose daily budget ran out (perhaps in another isolate), so they stop
    showing; an unreachable ledger changes nothing (redemptions still ask it). The rules are the
    isolate's when this runs: the published ones the same look may have brought."""
    now = int(time.time())
    for rule in (_isolate.engine or engine).ruleset.rules:
        if rule.offer is not None and rule.offer.max_per_day and rule.id not in memory.budgets.spent_today(now):
            with fail_open(f"budget of {rule.id} not refreshed", expected=True, level=logging.WARNING):
                memory.budgets.record_used(rule.id, await ledger_used(env, rule.id), rule.offer.max_per_day, now)
