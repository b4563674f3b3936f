from __future__ import annotations

import msgpack

from nudge.visitor.learned_catalog import LearnedCatalog, decode_facts, encode_facts
from nudge.visitor.product_facts import ProductFacts

FACTS = ProductFacts("SNK-001", "Aero Runner", 129.0, "USD", "sneakers", "Stride")


def test_facts_round_trip_and_bad_data() -> None:
    assert decode_facts(encode_facts(FACTS)) == FACTS
    for bad in (None, b"", b"\xc1", msgpack.packb([2, "x"]), msgpack.packb([1, 5, None, None, None, None, None]),
                msgpack.packb([1, "x"])):
        assert decode_facts(bad) is None


def test_catalog_remembers_recent_products_and_reports_changes() -> None:
    c = LearnedCatalog(size=2)
    assert c.remember("a", FACTS) and not c.remember("a", FACTS)
    c.remember("b", FACTS)
    c.get("a")  # a is now the most recently used
    c.remember("c", FACTS)
    assert c.get("b") is None and c.get("a") == FACTS and c.get("c") == FACTS


def test_price_by_product_id() -> None:
    c = LearnedCatalog(size=1)
    c.remember("aero-runner", FACTS)
    assert c.price_of("SNK-001") == 129.0 and c.price_of("SNK-999") is None
    c.remember("other", ProductFacts("X-1", price=5.0))  # evicts aero-runner
    assert c.price_of("SNK-001") is None and c.price_of("X-1") == 5.0
