"""HTML snippets the Worker writes into pages. Every value from rules, URLs or the visitor is
escaped; class names carry the `nudge-` prefix and theming goes through CSS custom properties."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .decide import Nudge
from .offers import Redeemed

STYLE = """<style id="nudge-style">
.nudge-modal{--nudge-accent:#111;--nudge-accent-text:#fff;--nudge-bg:#fff;--nudge-text:#1d1d1f;
--nudge-radius:14px;position:fixed;inset:0;z-index:2147483000;display:flex;align-items:center;
justify-content:center;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.nudge-modal[hidden]{display:none}
.nudge-backdrop{position:absolute;inset:0;background:rgba(0,0,0,.45)}
.nudge-panel{position:relative;max-width:min(420px,calc(100vw - 32px));padding:28px 28px 22px;
background:var(--nudge-bg);color:var(--nudge-text);border-radius:var(--nudge-radius);
box-shadow:0 20px 60px rgba(0,0,0,.3);text-align:center;animation:nudge-in .18s ease-out}
.nudge-title{margin:0 0 6px;font-size:1.5em;line-height:1.2}
.nudge-body{margin:0 0 18px}
.nudge-cta{display:inline-block;padding:12px 22px;border-radius:999px;background:var(--nudge-accent);
color:var(--nudge-accent-text);text-decoration:none;font-weight:600}
.nudge-dismiss{display:block;margin:12px auto 0;border:0;background:none;color:inherit;opacity:.7;
cursor:pointer;font:inherit;text-decoration:underline}
.nudge-x{position:absolute;top:8px;right:10px;border:0;background:none;font-size:22px;line-height:1;
cursor:pointer;color:inherit}
.nudge-banner{--nudge-banner-bg:#0f5132;--nudge-banner-text:#fff;display:flex;gap:12px;
align-items:center;justify-content:center;padding:10px 16px;background:var(--nudge-banner-bg);
color:var(--nudge-banner-text);font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.nudge-banner[hidden]{display:none}
.nudge-floating{position:fixed;left:0;right:0;bottom:0;z-index:2147482999;box-shadow:0 -4px 16px rgba(0,0,0,.2)}
.nudge-banner button{border:0;background:none;color:inherit;font-size:18px;cursor:pointer}
.nudge-banner a{color:inherit;font-weight:600;text-decoration:underline}
@keyframes nudge-in{from{opacity:0;transform:translateY(8px)}to{opacity:1;transform:none}}
@media (prefers-reduced-motion:reduce){.nudge-panel{animation:none}}
</style>"""


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _href(url: str) -> str:
    """Links nudge renders point at this site only: anything else (javascript:, //host) is '#'."""
    if not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "#"
    return _attr(url)


def modal(nudge: Nudge, cta_href: str) -> str:
    r, a = nudge.rule, nudge.action
    rid = _attr(r.id)
    title = f'<h2 class="nudge-title" id="nudge-t-{rid}">{escape(a.title)}</h2>' if a.title else ""
    body = f'<p class="nudge-body">{escape(a.body)}</p>' if a.body else ""
    cta = f'<a class="nudge-cta" data-nudge-cta href="{_href(cta_href)}">{escape(a.button)}</a>' if a.button else ""
    return (
        f'<div class="nudge-modal" id="nudge-{rid}" data-nudge-rule="{rid}" role="dialog" '
        f'aria-modal="true" aria-labelledby="nudge-t-{rid}" hidden>'
        f'<div class="nudge-backdrop" data-nudge-close></div><div class="nudge-panel">'
        f'<button type="button" class="nudge-x" data-nudge-close aria-label="Close">&times;</button>'
        f'{title}{body}{cta}'
        f'<button type="button" class="nudge-dismiss" data-nudge-close>{escape(a.dismiss)}</button>'
        f"</div></div>"
    )


def banner(nudge: Nudge, cta_href: str | None) -> str:
    r, a = nudge.rule, nudge.action
    text = " ".join(escape(t) for t in (a.title, a.body) if t)
    cta = f' <a data-nudge-cta href="{_href(cta_href)}">{escape(a.button)}</a>' if cta_href and a.button else ""
    later = bool(nudge.min_dwell or nudge.wait or nudge.rule.trigger != "page_load")
    # A banner revealed later floats over the page (fixed): nothing moves, so no layout shift.
    hidden, floating = (" hidden", " nudge-floating") if later else ("", "")
    return (
        f'<div class="nudge-banner{floating}" id="nudge-{_attr(r.id)}" data-nudge-rule="{_attr(r.id)}" '
        f'role="region" aria-label="Offer"{hidden}><span>{text}{cta}</span>'
        f'<button type="button" data-nudge-close aria-label="Dismiss">&times;</button></div>'
    )


def offer_applied_banner(offer: Redeemed) -> str:
    return (
        f'<div class="nudge-banner" id="nudge-offer-applied" role="status">'
        f"<span>{escape(offer.describe)} {escape(offer.category)} applied: code "
        f"<strong>{escape(offer.code)}</strong></span>"
        f'<button type="button" data-nudge-close aria-label="Dismiss">&times;</button></div>'
    )


def config_script(config: dict[str, Any]) -> str:
    """Page data for the client script, as inert JSON (no inline code, so CSP stays strict)."""
    data = json.dumps(config, separators=(",", ":"), ensure_ascii=True)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="nudge-config">{data}</script>'


def client_script_tag(src: str) -> str:
    return f'<script src="{_attr(src)}" defer></script>'


def notice(text: str) -> str:
    """A polite, dismissible one-line message (e.g. an offer link that no longer works)."""
    return (
        f'<div class="nudge-banner" id="nudge-notice" role="status">'
        f"<span>{escape(text)}</span>"
        f'<button type="button" data-nudge-close aria-label="Dismiss">&times;</button></div>'
    )
