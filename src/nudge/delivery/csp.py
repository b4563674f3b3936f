"""How to inject into a page without tripping its Content-Security-Policy (CSP Level 3).

The Worker adds an inline `<style>`, an inert `<script type="application/json">` data block (never
executed, so CSP does not apply to it) and a same-origin `<script src defer>`. A blocked element
would log a violation and, worse, report it to the shop, so each is added only when every policy
allows it. Only the enforced `Content-Security-Policy` header is passed in: a report-only policy
never blocks. A `<meta http-equiv>` policy inside the page is not seen here.

Whatever we cannot read with certainty (over-long headers, non-ASCII or quoted text a browser might
split differently) gets the most conservative answer: inject nothing. Bad input never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["NOTHING", "UNRESTRICTED", "Injection", "nonce_attr", "plan_injection"]

MAX_HEADER = 16 * 1024

# Per CSP3 an element directive falls back to the general one, then to default-src.
_SCRIPT = ("script-src-elem", "script-src", "default-src")
_STYLE_ELEM = ("style-src-elem", "style-src", "default-src")
_STYLE_ATTR = ("style-src-attr", "style-src", "default-src")

_NONCE_VALUE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")  # base64-value, also what we ever emit
_NONCE_SOURCE = re.compile(r"'nonce-([A-Za-z0-9+/_-]+={0,2})'", re.IGNORECASE)
# Any nonce or hash, even malformed, may switch 'unsafe-inline' off in some browser: assume it does.
_CANCELS_INLINE = ("'nonce-", "'sha256-", "'sha384-", "'sha512-")
_UNCLEAR = re.compile(r'[^\t\x20-\x21\x23-\x7e]')  # beyond printable ASCII, or a double quote
_ASCII_WS = re.compile(r"[\t\n\f\r ]+")
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?/?")
_HOST_SOURCE = re.compile(r"(?:(https?)://)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?/?")
_DEFAULT_PORT = {"http": 80, "https": 443}

_Policy = dict[str, tuple[str, ...]]
_Sources = tuple[str, ...] | None  # None: no directive applies, so anything goes
_Origin = tuple[str, str, int]


@dataclass(frozen=True)
class Injection:
    script: bool  # may we add our external same-origin <script src>
    script_nonce: str | None  # nonce to put on it (the only way in under nonces/'strict-dynamic')
    inline_style: bool  # may we inline <style>
    style_nonce: str | None  # nonce for our <style> (and the <link> below)
    external_style: bool  # may we load our own <link rel=stylesheet> instead (with style_nonce)
    style_attr: bool  # are style="" attributes allowed (we never rely on them; informational)


UNRESTRICTED = Injection(True, None, True, None, True, True)
NOTHING = Injection(False, None, False, None, False, False)


def nonce_attr(nonce: str | None) -> str:
    """` nonce="…"` for an element, re-checked so no header value can ever break out of it."""
    if nonce is None or not _NONCE_VALUE.fullmatch(nonce):
        return ""
    return f' nonce="{nonce}"'


def plan_injection(policies: str | None, origin: str | None = None) -> Injection:
    """What we may inject under the enforced CSP header value (several policies joined by ", ").

    `origin` ("https://shop.example") is the page's own origin; without it only 'self', * and
    nonces can admit our same-origin files.
    """
    parsed = _parse(policies or "")
    if parsed is None:
        return NOTHING
    page = _parse_origin(origin)

    scripts = [_effective(p, _SCRIPT) for p in parsed]
    runnable = all(_sandbox_allows_scripts(p) for p in parsed)
    script_ok = [
        n for n in _candidates(scripts) if all(_may_load(s, n, page, script=True) for s in scripts)
    ]

    elems = [_effective(p, _STYLE_ELEM) for p in parsed]

    def style_score(nonce: str | None) -> tuple[bool, bool]:
        return (
            all(_may_inline(s, nonce) for s in elems),
            all(_may_load(s, nonce, page, script=False) for s in elems),
        )

    best = max(_candidates(elems), key=style_score)  # first of the best: a nonce, if one helps
    inline, external = style_score(best)
    return Injection(
        script=runnable and bool(script_ok),
        script_nonce=script_ok[0] if runnable and script_ok else None,
        inline_style=inline,
        style_nonce=best if inline or external else None,
        external_style=external,
        style_attr=all(_may_inline(_effective(p, _STYLE_ATTR), None) for p in parsed),
    )


def _parse(header: str) -> list[_Policy] | None:
    """Policies as a browser reads them (first duplicate directive wins), None when unsure."""
    if len(header) > MAX_HEADER or _UNCLEAR.search(header):
        return None
    policies: list[_Policy] = []
    for serialized in header.split(","):
        policy: _Policy = {}
        for token in serialized.split(";"):
            words = [w for w in _ASCII_WS.split(token) if w]
            if words:
                policy.setdefault(words[0].lower(), tuple(words[1:]))
        if policy:  # an empty policy restricts nothing and is dropped
            policies.append(policy)
    return policies


def _parse_origin(origin: str | None) -> _Origin | None:
    match = _ORIGIN.fullmatch(origin.strip().lower()) if origin else None
    if match is None:
        return None
    scheme, host, port = match.groups()
    return scheme, host, int(port) if port else _DEFAULT_PORT[scheme]


def _effective(policy: _Policy, names: tuple[str, ...]) -> _Sources:
    return next((policy[name] for name in names if name in policy), None)


def _nonces(sources: _Sources) -> list[str]:
    return [m.group(1) for s in sources or () if (m := _NONCE_SOURCE.fullmatch(s))]


def _candidates(lists: list[_Sources]) -> list[str | None]:
    """Every nonce any policy names, in order, then no nonce at all."""
    found = [n for sources in lists for n in _nonces(sources)]
    return [*dict.fromkeys(found), None]


def _may_inline(sources: _Sources, nonce: str | None) -> bool:
    if sources is None or (nonce is not None and nonce in _nonces(sources)):
        return True
    lowered = [s.lower() for s in sources]
    # Per spec 'unsafe-inline' is ignored once a nonce or hash is present.
    return "'unsafe-inline'" in lowered and not any(s.startswith(_CANCELS_INLINE) for s in lowered)


def _may_load(sources: _Sources, nonce: str | None, page: _Origin | None, *, script: bool) -> bool:
    """May a parser-inserted element fetch a file from the page's own origin?"""
    if sources is None or (nonce is not None and nonce in _nonces(sources)):
        return True
    lowered = [s.lower() for s in sources]
    if script and "'strict-dynamic'" in lowered:  # hosts, schemes and 'self' no longer count
        return False
    return any(_is_own_origin(s, page) for s in lowered)


def _is_own_origin(source: str, page: _Origin | None) -> bool:
    """Conservative: exact scheme, host and port only; no wildcards, paths or http->https."""
    if source in ("'self'", "*"):
        return True
    if page is None:
        return False
    scheme, host, port = page
    if source.endswith(":"):
        return source[:-1] == scheme
    match = _HOST_SOURCE.fullmatch(source)
    if match is None:
        return False
    src_scheme, src_host, src_port = match.groups()
    if src_scheme not in (None, scheme) or src_host != host:
        return False
    return (int(src_port) if src_port else _DEFAULT_PORT[src_scheme or scheme]) == port


def _sandbox_allows_scripts(policy: _Policy) -> bool:
    """A `sandbox` without allow-scripts stops every script: ours would only sit there."""
    sandbox = policy.get("sandbox")
    return sandbox is None or "allow-scripts" in (s.lower() for s in sandbox)
