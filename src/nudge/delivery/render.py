"""HTML snippets the Worker writes into pages. Every value from rules, URLs or the visitor is
escaped; class names carry the `nudge-` prefix and theming goes through CSS custom properties."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from nudge.delivery.csp import nonce_attr
from nudge.offers import Redeemed
from nudge.rules.decide import Nudge
from nudge.rules.model import Texts
from nudge.rules.product_feed import CatalogProduct
from nudge.rules.templates import money
from nudge.visitor.pages import same_site_path

CSS = """
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
.nudge-slot-content{--nudge-slot-bg:#f4f1ea;--nudge-slot-text:#1d1d1f;padding:16px 20px;
border-radius:var(--nudge-radius,10px);background:var(--nudge-slot-bg);color:var(--nudge-slot-text)}
.nudge-slot-title{margin:0 0 4px;font-size:1.15em;font-weight:700}
.nudge-slot-content p{margin:0 0 8px}
.nudge-slot-content .nudge-cta{padding:8px 16px;--nudge-accent:#111;--nudge-accent-text:#fff}
.nudge-badge{--nudge-badge-bg:#fff3cd;--nudge-badge-text:#4d3800;display:inline-block;margin:4px 0;
padding:3px 10px;border-radius:999px;background:var(--nudge-badge-bg);color:var(--nudge-badge-text);
font:600 13px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.nudge-recs{--nudge-recs-gap:16px}
.nudge-recs-title{margin:0 0 10px;font-size:1.2em}
.nudge-recs ul{list-style:none;margin:0;padding:0;display:grid;gap:var(--nudge-recs-gap);
grid-template-columns:repeat(auto-fill,minmax(150px,1fr))}
.nudge-recs a{display:block;color:inherit;text-decoration:none}
.nudge-recs img{display:block;width:100%;height:auto;aspect-ratio:1;object-fit:cover;border-radius:8px}
.nudge-recs-name{display:block;font-weight:600;margin-top:6px}
.nudge-was{opacity:.7;margin-right:.35em}
[data-nudge-price-text]:has(>[data-nudge-price-new]){text-decoration:line-through}
[data-nudge-price-new]{display:inline-block;margin-left:.35em;text-decoration:none}
.nudge-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.nudge-banner button{border:0;background:none;color:inherit;font-size:18px;cursor:pointer}
.nudge-banner a{color:inherit;font-weight:600;text-decoration:underline}
@keyframes nudge-in{from{opacity:0;transform:translateY(8px)}to{opacity:1;transform:none}}
@media (prefers-reduced-motion:reduce){.nudge-panel{animation:none}}
"""
STYLE = f'<style id="nudge-style">{CSS}</style>'


def style_tag(nonce: str | None = None) -> str:
    """The inline stylesheet, carrying the page's CSP nonce when it has one."""
    return f'<style id="nudge-style"{nonce_attr(nonce)}>{CSS}</style>'


def stylesheet_link(href: str, nonce: str | None = None) -> str:
    """The same styles from the Worker's own path, for pages whose CSP forbids inline styles."""
    return f'<link rel="stylesheet" id="nudge-style" href="{_attr(href)}"{nonce_attr(nonce)}>'



def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _href(url: str) -> str:
    """Links nudge renders point at this site only: anything else (javascript:, //host) is '#'."""
    if not same_site_path(url):
        return "#"
    return _attr(url)


def _static(nudge: Nudge) -> Texts:
    a = nudge.action
    return Texts(escape(a.title), escape(a.body), escape(a.button), escape(a.dismiss))


def modal(nudge: Nudge, cta_href: str, texts: Texts | None = None) -> str:
    """A dialog in the page, hidden until its trigger (the client reveals it: no request)."""
    r, t = nudge.rule, texts or _static(nudge)
    rid = _attr(r.id)
    title = f'<h2 class="nudge-title" id="nudge-t-{rid}">{t.title}</h2>' if t.title else ""
    body = f'<p class="nudge-body">{t.body}</p>' if t.body else ""
    cta = f'<a class="nudge-cta" data-nudge-cta href="{_href(cta_href)}">{t.button}</a>' if t.button else ""
    return (
        f'<div class="nudge-modal" id="nudge-{rid}" data-nudge-rule="{rid}" role="dialog" '
        f'aria-modal="true" aria-labelledby="nudge-t-{rid}" hidden>'
        f'<div class="nudge-backdrop" data-nudge-close></div><div class="nudge-panel">'
        f'<button type="button" class="nudge-x" data-nudge-close aria-label="Close">&times;</button>'
        f'{title}{body}{cta}'
        f'<button type="button" class="nudge-dismiss" data-nudge-close>{t.dismiss}</button>'
        f"</div></div>"
    )


def banner(nudge: Nudge, cta_href: str | None, texts: Texts | None = None) -> str:
    r, t = nudge.rule, texts or _static(nudge)
    text = " ".join(x for x in (t.title, t.body) if x)
    cta = f' <a data-nudge-cta href="{_href(cta_href)}">{t.button}</a>' if cta_href and t.button else ""
    later = bool(nudge.min_dwell or nudge.wait or nudge.rule.trigger != "page_load")
    # A banner revealed later floats over the page (fixed): nothing moves, so no layout shift.
    hidden, floating = (" hidden", " nudge-floating") if later else ("", "")
    return (
        f'<div class="nudge-banner{floating}" id="nudge-{_attr(r.id)}" data-nudge-rule="{_attr(r.id)}" '
        f'role="region" aria-label="Offer"{hidden}><span>{text}{cta}</span>'
        f'<button type="button" data-nudge-close aria-label="Dismiss">&times;</button></div>'
    )


def slot_content(nudge: Nudge, cta_href: str | None, texts: Texts | None = None) -> str:
    """What replaces a slot's own content (the site's stays when no rule fills the slot)."""
    rid, t = _attr(nudge.rule.id), texts or _static(nudge)
    title = f'<p class="nudge-slot-title">{t.title}</p>' if t.title else ""
    body = f"<p>{t.body}</p>" if t.body else ""
    cta = (f'<a class="nudge-cta" data-nudge-cta href="{_href(cta_href)}">{t.button}</a>'
           if cta_href and t.button else "")
    return f'<div class="nudge-slot-content" id="nudge-{rid}" data-nudge-rule="{rid}">{title}{body}{cta}</div>'


def badge(nudge: Nudge, texts: Texts | None = None) -> str:
    """A small inline message added to a slot ("Top buyer", "$12 away from free shipping")."""
    rid, t = _attr(nudge.rule.id), texts or _static(nudge)
    text = " ".join(x for x in (t.title, t.body) if x)
    return f'<span class="nudge-badge" id="nudge-{rid}" data-nudge-rule="{rid}">{text}</span>'


def recommendations(nudge: Nudge, products: list[CatalogProduct], currency: str, texts: Texts | None = None) -> str:
    """A list of product links; images carry their size so nothing moves when they load."""
    rid, t = _attr(nudge.rule.id), texts or _static(nudge)
    heading = f'<h2 class="nudge-recs-title" id="nudge-t-{rid}">{t.title}</h2>' if t.title else ""
    label = f'aria-labelledby="nudge-t-{rid}"' if t.title else 'aria-label="Recommended products"'
    items = []
    for p in products:
        image = (f'<img src="{_image(p.image)}" alt="" width="300" height="300" loading="lazy" decoding="async">'
                 if p.image else "")
        price = (f'<span class="nudge-recs-price">{escape(money(p.price, currency))}</span>'
                 if p.price is not None else "")
        items.append(f'<li><a href="{_href(p.url)}" data-nudge-cta data-nudge-product="{_attr(p.id)}">{image}'
                     f'<span class="nudge-recs-name">{escape(p.name)}</span>{price}</a></li>')
    return (f'<section class="nudge-recs" id="nudge-{rid}" data-nudge-rule="{rid}" {label}>'
            f'{heading}<ul>{"".join(items)}</ul></section>')


def _image(url: str) -> str:
    return _attr(url) if url.startswith("https://") or same_site_path(url) else ""


def price(was: float, now: float, currency: str) -> str:
    """A marked price after the visitor's discount: the old one struck through, then the new one."""
    return (f'<s class="nudge-was"><span class="nudge-sr">was </span>{escape(money(was, currency))}</s>'
            f'<span class="nudge-now">{escape(money(now, currency))}</span>')


# A price element read from its text ([site] prices): the shop's own content stays, and the new
# price goes in after it; the style above strikes the content through (an inline-block is not struck).
TEXT_PRICE_MARK = "data-nudge-price-text"


def text_price(now: str) -> str:
    """The discounted price after a price element's own text, written as the shop writes prices."""
    return f'<span class="nudge-now" data-nudge-price-new><span class="nudge-sr">now </span>{escape(now)}</span>'


# What the banner on the offer's pages says, by what the cart backs (offer_apply.OfferShown.wording):
# only a cart that charges the discount gets "applied".
_OFFER_WORDING = {
    "code": "{what} {category}: use code <strong>{code}</strong> at checkout",
    "cart": "{what} {category}: code <strong>{code}</strong> added to your cart",
    "applied": "{what} {category} applied: code <strong>{code}</strong>",
}


def offer_banner(offer: Redeemed, wording: str = "code") -> str:
    """The visitor's offer on pages of its category; an unknown wording reads as `code`."""
    template = _OFFER_WORDING.get(wording, _OFFER_WORDING["code"])
    text = template.format(what=escape(offer.describe), category=escape(offer.category), code=escape(offer.code))
    kind = wording if wording in _OFFER_WORDING else "code"
    return (
        f'<div class="nudge-banner" id="nudge-offer-{kind}" data-nudge-offer="{kind}" role="status">'
        f"<span>{text}</span>"
        f'<button type="button" data-nudge-close aria-label="Dismiss">&times;</button></div>'
    )


def config_script(config: dict[str, Any]) -> str:
    """Page data for the client script, as inert JSON (no inline code, so CSP stays strict)."""
    data = json.dumps(config, separators=(",", ":"), ensure_ascii=True)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="nudge-config">{data}</script>'


def client_script_tag(src: str, nonce: str | None = None) -> str:
    return f'<script src="{_attr(src)}" defer{nonce_attr(nonce)}></script>'


def ascii_html(html: str) -> str:
    """`html` with every non-ASCII character as a numeric character reference. HTMLRewriter inserts
    text as UTF-8 whatever the page's charset, so "€" would read "â‚¬" on a windows-1252 page; in
    ASCII it reads the same in every ASCII-compatible charset. Only for markup whose text and
    attribute values browsers decode references in: nudge's <style> and JSON config are ASCII."""
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii")


def notice(text: str) -> str:
    """A polite, dismissible one-line message (e.g. an offer link that no longer works)."""
    return (
        f'<div class="nudge-banner" id="nudge-notice" role="status">'
        f"<span>{escape(text)}</span>"
        f'<button type="button" data-nudge-close aria-label="Dismiss">&times;</button></div>'
    )
