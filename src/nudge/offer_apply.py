"""How a redeemed offer reaches the shop's cart, and what pages may say about it.

nudge cannot charge anyone: the shop's cart does. So what nudge shows follows from how the cart
gets the discount, which the shop states per offer (`[offer] apply`) or once in `rules/site.toml`
(`[shop] offer_apply`):

- `code` (the default): the shopper is told the code to enter at checkout. Nothing says "applied"
  and no price is rewritten, because a stock cart charges full price until the code is entered.
- `url`: the button goes through the platform's own apply-by-URL (`[shop] offer_apply_url`, e.g.
  Shopify's `/discount/{code}?redirect={redirect}`), so the cart holds the code; nudge says so.
- `header`: the shop reads `X-Nudge-Offer`. A page the origin answers with `X-Nudge-Offer-Applied`
  was priced by the shop itself (nudge says "applied" and leaves its prices alone); with
  `[shop] offer_header = "honoured"` the shop declares its cart charges the header's price, so nudge
  may rewrite marked prices. Otherwise the honest `code` wording.

Only `header` offers travel to the origin as `X-Nudge-Offer`: in the other modes the platform's own
code is the discount, and a header a shop half-reads could price pages unlike the cart (it would
also keep offer holders' pages out of the edge cache for nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from nudge.visitor.pages import same_site_path

APPLY_MODES = ("code", "url", "header")
DEFAULT_MODE = "code"
HEADER_TRUST = ("confirmed", "honoured")  # [shop] offer_header: per response, or the cart always
PLACEHOLDERS = ("code", "redirect")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class OfferShown:
    """What a page may show about the visitor's offer."""

    wording: str  # "code" (use it at checkout), "cart" (added to the cart), "applied"
    rewrite_prices: bool  # nudge may show marked prices with the discount


CODE_WORDING = OfferShown("code", False)


def offer_shown(mode: str, confirmed: bool, honoured: bool) -> OfferShown:
    """The claim the cart backs: `confirmed` is the origin's X-Nudge-Offer-Applied on this response,
    `honoured` the site's word that its cart charges the header's price on every page."""
    if mode == "header" and confirmed:
        return OfferShown("applied", False)  # the shop priced the page itself: never twice
    if mode == "header" and honoured:
        return OfferShown("applied", True)
    if mode == "url":
        return OfferShown("cart", False)
    return CODE_WORDING


def apply_location(template: str, code: str, redirect: str) -> str:
    """The platform's apply-by-URL for this code, both values percent-encoded (so neither can add a
    path segment, a query field or leave the site)."""
    values = {"code": quote(code, safe=""), "redirect": quote(redirect, safe="")}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def apply_url_problem(template: str) -> str | None:
    """Why `template` cannot be the site's apply-by-URL, or None when it can."""
    names = _PLACEHOLDER.findall(template)
    unknown = sorted(set(names) - set(PLACEHOLDERS))
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}}: use {{code}} and {{redirect}}"
    if "code" not in names:
        return "must contain {code}, e.g. \"/discount/{code}?redirect={redirect}\""
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        return "unbalanced '{' or '}'"
    if not same_site_path(apply_location(template, "CODE", "/")):
        return "must be a same-site path starting with a single '/'"
    return None
