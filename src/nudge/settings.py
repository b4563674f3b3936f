"""The Worker's configuration read from its vars and secrets (plain strings in, checked values
out): what nudge needs to start, and the whole-number tunables with their bounds and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nudge.followups.webhook import webhook_url_problem
from nudge.signing import parse_secrets
from nudge.visitor.privacy import ConsentPolicy

# The vars an isolate's engine is built from: when any of them changes, it is built again.
ENGINE_VARS = ("NUDGE_SECRET", "NUDGE_CONSENT", "NUDGE_CONSENT_COOKIE", "NUDGE_EDGE_CART", "NUDGE_SHADOW",
               "NUDGE_EXPLAIN_TOKEN", "NUDGE_WEBHOOK_URL", "NUDGE_WEBHOOK_SECRET", "NUDGE_SHOP_SECRET")


class ConfigError(RuntimeError):
    """The Worker is deployed without what it needs (e.g. no NUDGE_SECRET)."""


@dataclass(frozen=True)
class Settings:
    """The checked configuration an engine is built from."""

    secrets: list[bytes]
    consent: ConsentPolicy
    edge_cart: bool
    shadow: bool
    explain_token: str
    shop_secret: bytes | None
    webhook_url: str
    webhook_secret: str


def settings_from(values: Mapping[str, str]) -> Settings:
    """Settings from ENGINE_VARS (absent ones as ""); ConfigError says what is wrong."""
    secrets = parse_secrets(values.get("NUDGE_SECRET", ""))
    if not secrets:
        raise ConfigError("NUDGE_SECRET is not set (`wrangler secret put NUDGE_SECRET`; locally .dev.vars)")
    try:
        consent = ConsentPolicy.from_config(values.get("NUDGE_CONSENT") or None,
                                            values.get("NUDGE_CONSENT_COOKIE") or None)
    except ValueError as exc:
        raise ConfigError(f"NUDGE_CONSENT: {exc}") from exc
    for name in ("NUDGE_EDGE_CART", "NUDGE_SHADOW"):
        if values.get(name, "") not in ("", "on", "off"):
            raise ConfigError(f"{name} must be 'on' or 'off', not {values[name]!r}")
    return Settings(
        secrets=secrets,
        consent=consent,
        edge_cart=values.get("NUDGE_EDGE_CART", "") != "off",
        shadow=values.get("NUDGE_SHADOW", "") == "on",
        explain_token=values.get("NUDGE_EXPLAIN_TOKEN", ""),
        shop_secret=values.get("NUDGE_SHOP_SECRET", "").encode("utf-8") or None,
        webhook_url=values.get("NUDGE_WEBHOOK_URL", ""),
        webhook_secret=values.get("NUDGE_WEBHOOK_SECRET", ""),
    )


def followups_problem(settings: Settings, has_queue: bool) -> str | None:
    """Why follow-ups are off although a webhook URL is set (None: they are on, or no URL is set,
    which is no problem). They need a usable webhook URL, its signing secret and the queue."""
    if not settings.webhook_url:
        return None
    problem = webhook_url_problem(settings.webhook_url) or (
        "" if settings.webhook_secret else "NUDGE_WEBHOOK_SECRET is not set")
    if not problem and not has_queue:
        problem = "no NUDGE_FOLLOWUPS queue binding (see wrangler.toml)"
    return problem or None


def whole_number(raw: str, low: int, high: int, default: int) -> int:
    """A whole-number setting: `default` when unset, not a number, or outside low..high."""
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else default
