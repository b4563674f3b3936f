"""Paths nudge leaves alone: the shop's own admin and anything listed in rules/site.toml
`[site] exclude`. A request for one passes through as if nudge were not there: no cookie set or
renewed, no markup, nothing counted (the request still loses nudge's cookies and X-Nudge-*
headers on the way to the origin, as every request does).

Globs are fnmatch patterns over the path ("/dashboard*" matches "/dashboard/orders/"), as a rule's
`pages` globs are. They are matched case-insensitively and against the percent-decoded path too:
"/%61dmin/" and "/Admin/" reach the same admin on most servers, and excluding a page too many is
harmless where injecting into an admin is not.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import unquote

# Where common platforms keep their admin: Django's admin, Oscar's and Saleor's dashboards, WordPress.
DEFAULT_EXCLUDE: tuple[str, ...] = ("/admin*", "/dashboard*", "/wp-admin*")
MAX_EXCLUDE = 50  # globs in [site] exclude: a list to read, not a routing table


def is_excluded(path: str, globs: tuple[str, ...]) -> bool:
    """Whether nudge must pass a request for `path` through untouched."""
    if not globs:
        return False
    spellings = {path.lower(), unquote(path).lower()}
    return any(fnmatchcase(p, glob.lower()) for glob in globs for p in spellings)
