"""Short stable keys for ids that cookies and profiles store many of (not secrets, not hashes of
anything private). Kept free of third-party imports: the build step loads rules with them."""

from __future__ import annotations

import zlib


def key32(text: str) -> int:
    """A stable 32-bit key for a rule id (caps, history)."""
    return zlib.crc32(text.encode("utf-8"))


def key16(text: str) -> int:
    """A stable 16-bit key for a product or category name where only a handful are compared (distinct
    products of a category, the page a dwell report is about): 3 bytes on the wire instead of ~12."""
    return zlib.crc32(text.encode("utf-8")) & 0xFFFF
