"""The isolate's memory of pages the origin would not share (nudge.delivery.unshared_pages)."""

from __future__ import annotations

from nudge.delivery.unshared_pages import UNSHARED_FOR, UnsharedPages
from tests.support.clock import FakeClock


def test_an_unshareable_page_is_not_looked_up_for_a_minute() -> None:
    clock = FakeClock()
    pages = UnsharedPages(timer=clock)
    url = "https://shop.example/collections/sneakers"
    assert pages.worth_looking_up(url)  # never seen: the cache may have it
    pages.answered(url, shareable=False)
    clock.now += UNSHARED_FOR - 1
    assert not pages.worth_looking_up(url)
    assert pages.worth_looking_up(url + "?page=2")  # another URL is another page
    clock.now += 1
    assert pages.worth_looking_up(url)  # the origin may have changed its mind: look again


def test_a_page_the_origin_now_shares_is_looked_up_at_once() -> None:
    pages = UnsharedPages(timer=FakeClock())
    pages.answered("/a", shareable=False)
    pages.answered("/a", shareable=True)
    assert pages.worth_looking_up("/a")


def test_memory_is_bounded() -> None:
    pages = UnsharedPages(size=2, timer=FakeClock())
    for url in ("/a", "/b", "/c"):
        pages.answered(url, shareable=False)
    assert pages.worth_looking_up("/a") and not pages.worth_looking_up("/c")
