"""Request guards at the trust boundary: what nudge accepts from a browser before it changes any
state, which request headers never reach the origin, which origin pages the edge cache may share,
and how a Location nudge builds is made safe to send.

Plain Python (no JS): the edge asks these functions and does what they say.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
BEACON_MEDIA_TYPE = "application/json"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """The serialized origin (scheme://host[:port], default port left out, lower case) of an
    absolute http(s) URL or an Origin header; None for anything else ("null", opaque, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def cross_origin_refusal(method: str, sec_fetch_site: str | None, origin: str | None, site: str) -> str | None:
    """Why a request to one of nudge's own endpoints must be refused as possibly cross-site (403),
    or None when it may go on. Safe methods (GET, HEAD, OPTIONS) change nothing and always go on.
    Any other method needs proof that the page that sent it is this site's own origin (`site`,
    the scheme://host[:port] the request was made to): `Sec-Fetch-Site: same-origin` when the
    browser sends Sec-Fetch-Site (another subdomain or port is `same-site`, refused), else an
    `Origin` equal to `site` (`Origin: null`, from sandboxed frames and data: URLs, is refused).
    A request with neither header is accepted: every browser in use sends `Origin` on a
    cross-origin POST (Firefox since 70, 2019; Chromium and Safari long before), so such a request
    comes from a non-browser client, which carries no visitor's cookies but its own."""
    if method.upper() in SAFE_METHODS:
        return None
    if sec_fetch_site is not None:
        verdict = sec_fetch_site.strip().lower()
        return None if verdict == "same-origin" else f"Sec-Fetch-Site is {verdict or 'empty'}, not same-origin"
    if origin is None:
        return None
    own = origin_of(site)
    if own is None or origin_of(origin) != own:
        return "Origin is not this site"
    return None


def beacon_media_refusal(content_type: str | None) -> str | None:
    """Why a beacon body's Content-Type is refused (415), or None for application/json (with any
    parameters, e.g. charset). What our client sends with sendBeacon (a Blob typed
    application/json) and fetch; never an HTML form's encodings (urlencoded, multipart,
    text/plain), which a page on another site can submit without asking anyone."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == BEACON_MEDIA_TYPE:
        return None
    return f"Content-Type must be {BEACON_MEDIA_TYPE}, not {media or 'absent'}"


def is_nudge_header(name: str) -> bool:
    """Any spelling of an X-Nudge-* header: any case, hyphens or underscores (PHP, Django's META
    and Rack read `X_Nudge_User` as the trusted X-Nudge-User). The browser's copies never reach the
    origin: only the edge sets these."""
    return name.strip().lower().replace("_", "-").startswith("x-nudge-")


def location_value(location: str) -> str:
    """A Location nudge builds, sendable as a header and read back as it was meant: every character
    outside printable ASCII (non-ASCII as UTF-8, controls, space) percent-encoded, everything else
    (existing %XX escapes included) kept as is. So `/été` goes as `/%C3%A9t%C3%A9` and `/。x` as
    `/%E3%80%82x`, never as Latin-1 bytes or an error."""
    return "".join(c if "!" <= c <= "~" else quote(c, safe="", errors="replace") for c in location)


def shareable_vary(vary: str | None) -> bool:
    """Whether a response with this Vary may be shared from the edge cache: Cloudflare's cache keys
    on the URL (and the encoding it negotiates itself), never on other request headers, so only a
    Vary that is absent or names Accept-Encoding alone is safe to serve to anyone."""
    names = [name.strip().lower() for name in (vary or "").split(",")]
    return all(name in ("", "accept-encoding") for name in names)


def shareable_page(status: int, headers: Mapping[str, str]) -> bool:
    """The origin says anyone may be served this HTML (lower-case header names): 200 text/html,
    `public` or `s-maxage`, nothing private, no cookie of its own, no Vary but Accept-Encoding.
    Only then is it kept in the edge cache."""
    cache_control = headers.get("cache-control", "").lower()
    return (status == 200 and headers.get("content-type", "").lower().startswith("text/html")
            and ("public" in cache_control or "s-maxage" in cache_control)
            and not any(d in cache_control for d in ("private", "no-store", "no-cache"))
            and "set-cookie" not in headers and shareable_vary(headers.get("vary")))


def shared_by_policy(status: int, headers: Mapping[str, str]) -> bool:
    """The origin's policy lets shared caches keep this page, whatever this one answer's cookie: a
    Set-Cookie for one visitor (a shop's first-visit session) says nothing about the copy the next
    visitor gets, which the edge cache may well hold (delivery/unshared_pages.py)."""
    return shareable_page(status, {name: value for name, value in headers.items() if name != "set-cookie"})


def forwarded_for(given: str | None, client: str | None) -> str | None:
    """The X-Forwarded-For the origin gets: the chain the request came with, ending in the address
    that connected (`client`: CF-Connecting-IP, set by Cloudflare and unforgeable there). Cloudflare
    already appends that address to the request's own header, so it is not added twice; with no
    address known the given chain passes on unchanged. Origins should trust only its last entry."""
    chain = [hop.strip() for hop in (given or "").split(",") if hop.strip()]
    address = (client or "").strip()
    if address and (not chain or chain[-1] != address):
        chain.append(address)
    return ", ".join(chain) or None
