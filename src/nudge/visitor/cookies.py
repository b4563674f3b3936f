"""Cookie header parsing and Set-Cookie building (stdlib `http.cookies` rejects too much real-world
input, so parse leniently: a malformed pair is skipped, never an error)."""

from __future__ import annotations

from urllib.parse import unquote

OUR_COOKIES = ("nudge", "nudge_offer", "nudge_dw", "nudge_msg", "nudge_preview")
MAX_HEADER = 16 * 1024


def parse_cookies(header: str | None) -> dict[str, str]:
    """Cookie name -> value; the first occurrence of a name wins (the most specific path)."""
    out: dict[str, str] = {}
    if not header or len(header) > MAX_HEADER:
        return out
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out.setdefault(name, unquote(value))
    return out


def is_our_cookie(name: str) -> bool:
    """nudge's cookies: `nudge` and any `nudge_*` (those of today and of any later version)."""
    name = name.strip()
    return name in OUR_COOKIES or name.startswith("nudge_")


def without_our_cookies(header: str | None) -> str | None:
    """The Cookie header to forward to the origin: the shop's own cookies, not nudge's."""
    if not header:
        return header
    kept = [c.strip() for c in header.split(";") if not is_our_cookie(c.partition("=")[0])]
    kept = [c for c in kept if c]
    return "; ".join(kept) if kept else None


def set_cookie(name: str, value: str, *, max_age: int, secure: bool, http_only: bool = True) -> str:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max(0, int(max_age))}", "SameSite=Lax"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def is_local_http(url_scheme: str, host: str) -> bool:
    """Plain http to this machine: the only case where cookies are set without `Secure`."""
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return url_scheme == "http" and hostname in ("localhost", "127.0.0.1", "[::1]")
