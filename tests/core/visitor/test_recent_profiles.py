"""The isolate's memory of recently read or written profiles (nudge.visitor.recent_profiles)."""

from __future__ import annotations

from nudge.visitor.recent_profiles import KV_STALENESS, RecentProfiles
from tests.support.clock import FakeClock


def test_a_profile_is_held_for_the_staleness_kv_already_has_then_asked_again() -> None:
    clock = FakeClock()
    recent = RecentProfiles(timer=clock)
    recent.keep("v1", b"stored")
    clock.now += KV_STALENESS - 1
    assert recent.get("v1") == b"stored"
    clock.now += 1
    assert recent.get("v1") is None  # a minute old: KV is asked again


def test_a_newer_write_replaces_what_was_read() -> None:
    clock = FakeClock()
    recent = RecentProfiles(timer=clock)
    recent.keep("v1", b"read")
    clock.now += 30
    recent.keep("v1", b"written")
    clock.now += 45  # 75 s after the read, 45 s after the write
    assert recent.get("v1") == b"written"


def test_absent_and_forgotten_profiles_are_never_served() -> None:
    recent = RecentProfiles(timer=FakeClock())
    recent.keep("v1", b"stored")
    recent.keep("v1", None)  # KV answered "none" since: a new visitor, or erased elsewhere
    assert recent.get("v1") is None
    recent.keep("v2", b"stored")
    recent.forget("v2")
    assert recent.get("v2") is None
    assert recent.get("never-seen") is None


def test_memory_is_bounded_oldest_visitors_go_first() -> None:
    recent = RecentProfiles(size=3, timer=FakeClock())
    for name in ("a", "b", "c", "d"):
        recent.keep(name, name.encode())
    assert recent.get("a") is None
    assert [recent.get(n) for n in ("b", "c", "d")] == [b"b", b"c", b"d"]
