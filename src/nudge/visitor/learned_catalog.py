"""The catalog nudge learns from the shop's own pages: product facts (JSON-LD / og tags) by the
product's URL slug, so a product page whose URL has no category still counts for its category.

Facts are read while a product page streams (too late for that response's cookie), remembered in
the isolate and in KV (`product:<slug>`), and used from the next view of that product on. One per
isolate, part of its memory (isolate_memory.py); the shop's product feed (rules/catalog.toml) is
not in here: it belongs to the rule set, and the Engine asks both (Engine.item_price).
"""

from __future__ import annotations

from collections import OrderedDict

import msgpack

from nudge.visitor.product_facts import ProductFacts

MAX_CACHED = 2000


def encode_facts(f: ProductFacts) -> bytes:
    data: bytes = msgpack.packb([1, f.id, f.name, f.price, f.currency, f.category, f.brand])
    return data


def decode_facts(data: bytes | None) -> ProductFacts | None:
    if not data:
        return None
    try:
        version, *fields = msgpack.unpackb(data)
        pid, name, price, currency, category, brand = fields
        texts = (name, currency, category, brand)
        if version != 1 or not isinstance(pid, str) or not all(t is None or isinstance(t, str) for t in texts):
            return None
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))):
            return None
        return ProductFacts(pid, name, price, currency, category, brand)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None


class LearnedCatalog:
    """Product facts by slug, least recently used evicted first (one per isolate)."""

    def __init__(self, size: int = MAX_CACHED) -> None:
        self._facts: OrderedDict[str, ProductFacts] = OrderedDict()
        self._by_id: dict[str, str] = {}  # product id (sku) -> slug
        self._size = size

    def get(self, slug: str) -> ProductFacts | None:
        facts = self._facts.get(slug)
        if facts is not None:
            self._facts.move_to_end(slug)
        return facts

    def remember(self, slug: str, facts: ProductFacts) -> bool:
        """Stores facts; True when they are new or changed (worth a KV write)."""
        changed = self._facts.get(slug) != facts
        self._facts[slug] = facts
        self._by_id[facts.id] = slug
        self._facts.move_to_end(slug)
        while len(self._facts) > self._size:
            _, old = self._facts.popitem(last=False)
            self._by_id.pop(old.id, None)
        return changed

    def price_of(self, product_id: str) -> float | None:
        """The last price seen for a product id (sku), when its page has been read in this isolate."""
        slug = self._by_id.get(product_id)
        facts = self._facts.get(slug) if slug else None
        return facts.price if facts is not None and facts.id == product_id else None
