"""Who may be tracked: the site's consent mode, and traffic that is not a person looking at a page.

Both answers only ever remove visitors from tracking; a misconfigured mode is an error, never a
silent "track everyone" (the caller then treats the Worker as unconfigured and tracks nobody)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, cast
from urllib.parse import unquote

ConsentMode = Literal["none", "gpc", "opt-in"]
MODES: tuple[ConsentMode, ...] = ("none", "gpc", "opt-in")

# Consent-cookie values that mean "yes", compared after URL-decoding, stripping and case-folding.
# Vendor formats (OneTrust `groups=C0001:1,...`, JSON blobs) are deliberately not parsed: a site
# using one points NUDGE_CONSENT_COOKIE at a simple cookie its banner sets.
YES = frozenset({"1", "true", "yes", "granted", "allow", "accepted"})

# Every request header these answers read (the runtime passes just these, lower-case).
PRIVACY_HEADERS = ("user-agent", "sec-purpose", "purpose", "x-purpose", "x-moz", "sec-gpc", "dnt")

# Browser-wide "do not track me" signals, honoured in `gpc` mode.
_OPT_OUT_HEADERS = ("sec-gpc", "dnt")

# Header -> tokens that mark a speculative fetch the visitor may never see.
_PREFETCH_HEADERS: Mapping[str, tuple[str, ...]] = {
    "sec-purpose": ("prefetch", "prerender"),  # Speculation Rules / <link rel=prefetch>
    "purpose": ("prefetch",),  # older Chrome
    "x-purpose": ("preview",),  # Safari top-sites thumbnails
    "x-moz": ("prefetch",),  # Firefox link prefetch
}

# Declared crawlers and link-preview fetchers, by User-Agent (case-insensitive substring search).
# Only *declared* automation: curl, wget, python clients and HeadlessChrome are NOT listed (our own
# runtime and e2e tests use them, and so do real users' tools). No bare `bot` token either: it
# would hit phones such as "CUBOT_X30".
BOT_UA = re.compile(
    "|".join(
        [
            # Search engines (Baiduspider and Sogou's "* spider" UAs fall under `spider` below).
            r"googlebot|adsbot-google|mediapartners-google|google-inspectiontool|storebot-google",
            r"bingbot|bingpreview|slurp|duckduckbot|yandex\w*bot|exabot|applebot|petalbot",
            # Link previews in social and chat apps (their in-app browsers do not use these names).
            r"facebookexternalhit|facebot|twitterbot|linkedinbot|pinterestbot|slackbot",
            r"discordbot|telegrambot|^whatsapp/",
            # SEO crawlers.
            r"ahrefsbot|semrushbot|mj12bot|dotbot",
            # AI crawlers and assistants fetching on a user's behalf.
            r"gptbot|chatgpt-user|oai-searchbot|claudebot|anthropic-ai|perplexitybot|ccbot",
            r"bytespider|amazonbot",
            # Generic self-declarations ("SeznamBot/4.0", "SEO Spider", "MyCrawler").
            r"bot/|crawl|spider",
        ]
    ),
    re.IGNORECASE,
)


def parse_consent_mode(value: str | None) -> ConsentMode:
    """NUDGE_CONSENT -> mode; empty means "none". A typo must fail loudly, not track everyone."""
    mode = (value or "").strip().lower() or "none"
    _check_mode(mode)
    return cast(ConsentMode, mode)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown consent mode {mode!r}: expected one of {', '.join(MODES)}")


@dataclass(frozen=True)
class ConsentPolicy:
    mode: ConsentMode
    cookie: str | None = None

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        if self.mode == "opt-in" and not self.cookie:
            raise ValueError("consent mode 'opt-in' needs NUDGE_CONSENT_COOKIE (the consent cookie's name)")

    @classmethod
    def from_config(cls, mode: str | None, cookie: str | None) -> ConsentPolicy:
        """From the Worker's NUDGE_CONSENT and NUDGE_CONSENT_COOKIE; raises ValueError if unusable."""
        return cls(parse_consent_mode(mode), (cookie or "").strip() or None)


def may_track(policy: ConsentPolicy, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
    """Whether this visitor may be tracked; `headers` has lower-case names, `cookies` is parsed."""
    if policy.mode == "none":
        return True
    if policy.mode == "gpc":
        return not any(headers.get(h, "").strip() == "1" for h in _OPT_OUT_HEADERS)
    # opt-in: construction guarantees the cookie name; only an explicit "yes" is consent
    return policy.cookie is not None and consent_given(cookies.get(policy.cookie))


def consent_given(value: str | None) -> bool:
    """A consent cookie value that says yes; missing, "no" and anything unrecognised are no."""
    return value is not None and unquote(value).strip().lower() in YES


def is_automated(headers: Mapping[str, str]) -> bool:
    """Prefetches and declared bots: requests that are not a person viewing the page right now."""
    for name, tokens in _PREFETCH_HEADERS.items():
        value = headers.get(name, "").lower()
        if any(token in value for token in tokens):
            return True
    return _declared_bot(headers.get("user-agent", ""))


def _declared_bot(user_agent: str) -> bool:
    """BOT_UA's verdict, remembered for the user agents an isolate keeps seeing: the search costs
    ~45 µs a request in Pyodide, the lookup ~0.1. Overlong values are not kept."""
    return _declared_bot_cached(user_agent) if len(user_agent) <= 512 else bool(BOT_UA.search(user_agent))


@lru_cache(maxsize=1024)
def _declared_bot_cached(user_agent: str) -> bool:
    return bool(BOT_UA.search(user_agent))
