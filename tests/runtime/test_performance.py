"""What a page costs the Worker on workerd: handler calls HTMLRewriter makes into Python (counted
by nudge itself, in the page's log line), and a rewritten body that streams while the origin is
still sending. The figures themselves are printed by the benchmarks in bench/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nudge.visitor.learned_catalog import decode_facts
from nudge_tools.origin import serving_origin
from nudge_tools.origin_pages import sized_page
from nudge_tools.processes import Process, local_edge
from nudge_tools.traffic import HONOURED, publish, rules_with_shop
from tests.runtime.test_delivery import offer_cookie
from tests.runtime.test_worker import SECRET, wait_for_kv

pytestmark = pytest.mark.runtime


@dataclass
class BenchEdge:
    url: str
    process: Process
    kv_dir: Path

    def page_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.process.output().splitlines() if line.startswith('{"nudge":"page"')]

    def handler_calls(self, before: int, kind: str) -> int:
        """The handler calls nudge counted for the one page of type `kind` logged after the first
        `before` page lines (a page's line is printed once its body has gone through)."""
        deadline = time.monotonic() + 5
        while not (mine := [line for line in self.page_lines()[before:] if line["page"] == kind]) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(mine) == 1 and mine[0]["ended"] is True, (mine, self.process.output()[-2000:])
        return int(str(mine[0]["handlers"]))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchEdge]:
    kv_dir = tmp_path_factory.mktemp("kv")  # rules for a cart that charges X-Nudge-Offer: prices rewritten
    publish(rules_with_shop(tmp_path_factory.mktemp("rules"), HONOURED), kv_dir)
    with serving_origin(sized=True) as (origin, _), local_edge(origin, kv_dir, SECRET) as (url, process):
        yield BenchEdge(url, process, kv_dir)


def unique(path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}n={time.monotonic_ns()}"


@pytest.mark.parametrize("path, kind, calls", [
    ("/collections/sneakers", "category", 4),  # head, body, </body>, the document's end
    ("/collections/sneakers/products/aero-runner", "product", 5),  # and the slot a rule fills
])
def test_a_typical_page_costs_at_most_five_handler_calls(edge: BenchEdge, path: str, kind: str, calls: int) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        c.get("/")  # a visitor with a session, as on most pages
        before = len(edge.page_lines())
        target = unique(path)
        r = c.get(target)
    assert r.status_code == 200 and 'id="nudge-config"' in r.text  # rewritten: the handlers ran
    marked = sized_page(20)[1].decode().count("data-nudge-price=")
    assert r.text.count("data-nudge-price=") == marked > 30 and "nudge-now" not in r.text  # prices, no offer
    assert edge.handler_calls(before, kind) == calls <= 5


def test_prices_and_product_facts_cost_one_call_per_marked_element(edge: BenchEdge) -> None:
    target = unique("/products/trail-shoe-calls?jsonld=1")
    before = len(edge.page_lines())
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        r = c.get(target, headers={"cookie": offer_cookie()})
    prices = r.text.count('<span class="nudge-now">')
    assert prices == sized_page(20, True)[1].decode().count('data-nudge-category="sneakers"') > 30
    calls = edge.handler_calls(before, "product")
    # head, body, </body>, end + every price + the JSON-LD script + the 7 meta tags the collector
    # reads (not og:description, og:site_name, og:image) + the script's text in chunks (at least one)
    fixed = 4 + prices + 1 + 7
    assert fixed < calls <= fixed + 4


def test_product_facts_are_read_from_meta_tags_as_cms_spell_them(edge: BenchEdge) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        c.get("/products/odd-meta-shoe?facts=meta")
    deadline, facts = time.monotonic() + 15, None
    while facts is None and time.monotonic() < deadline:  # the file may be caught mid-write: poll
        found = wait_for_kv(edge.kv_dir, "product", "odd-meta-shoe")
        facts = decode_facts(found.value) if found else None
        time.sleep(0.05)
    assert facts is not None and facts.id == "TS-1" and facts.category == "sneakers"


def test_the_rewritten_head_leaves_before_the_origin_has_finished(edge: BenchEdge) -> None:
    pause = 1.5  # the origin sends everything up to </head>, waits, then the rest
    received, head_at = b"", None
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        start = time.perf_counter()
        # identity: workerd would gzip for clients that accept it (as Cloudflare does); read the bytes as sent
        with c.stream("GET", unique(f"/collections/sneakers?pause={pause}"),
                      headers={"accept-encoding": "identity"}) as r:
            for chunk in r.iter_raw():
                received += chunk
                if head_at is None and b"</head>" in received:
                    head_at, head = time.perf_counter() - start, received
            done_at = time.perf_counter() - start
    # the head, nudge's stylesheet in it, was on its way to the browser during the origin's pause
    assert head_at is not None and head_at < pause - 0.5 < pause < done_at
    assert b'id="nudge-style"' in head and b"<body" not in head
    assert received.rstrip().endswith(b"</body></html>") and b'id="nudge-config"' in received


def test_a_visitors_later_pages_decide_with_the_profile_the_isolate_holds(edge: BenchEdge) -> None:
    """A visit's first page reads KV; later pages within the minute KV itself may be stale take the
    profile this isolate read or wrote (visitor/recent_profiles.py): no KV read, no wait for one."""
    sources: list[str] = []
    with httpx.Client(base_url=edge.url, timeout=30) as c:
        for _ in range(6):  # a read that missed its 50 ms budget under load is not held: read again
            before = len(edge.page_lines())
            assert c.get(unique("/collections/boots")).status_code == 200
            deadline = time.monotonic() + 5
            while not (mine := [line for line in edge.page_lines()[before:] if line["page"] == "category"]) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(mine) == 1, edge.process.output()[-2000:]
            sources.append(str(mine[0]["profile"]))
            if sources[-1] == "held":
                break
    assert sources[0] in ("kv", "late") and sources[-1] == "held", sources
    assert set(sources[1:-1]) <= {"kv", "late"}, sources
