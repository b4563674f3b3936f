from __future__ import annotations

import msgpack
import pytest

from nudge.visitor.pages import Page
from nudge.visitor.profile import AFFINITY_HALF_LIFE, Profile, decode_profile, encode_profile, merged_profile
from nudge.visitor.tracking import credit_dwell, record_page_view
from tests.core.factories import NOW, session


def test_round_trip() -> None:
    p = Profile(visits=3, orders=2, revenue=250_00, offers_redeemed=1, first_seen=NOW - 100, last_seen=NOW,
                affinity={"sneakers": 4.5})
    assert decode_profile(encode_profile(p)) == p


@pytest.mark.parametrize(
    "data",
    [None, b"", b"\xc1", msgpack.packb([1, 2, 3, 4, 5]), msgpack.packb([4, -1, 0, 0, 0, 0, 0, [], None, []]),
     msgpack.packb([4, "x", 0, 0, 0, 0, 0, [], None, []]), msgpack.packb([9, 1, 0, 0, 0, 0, 0, [], None, []]),
     msgpack.packb([4, 1, 0, 0, 0, 0, 0, [], 5, []]),
     msgpack.packb([4, 1, 0, 0, 0, 0, 0, [], None, [[1, -2, 0, 0, 0, 0]]]), msgpack.packb({"a": 1})],
)
def test_unreadable_profiles_are_none(data: bytes | None) -> None:
    assert decode_profile(data) is None


def test_first_page_of_a_visit_counts_a_visit_and_folds_in_the_ended_visit() -> None:
    ended = session()
    pv = record_page_view(ended, Page("category", "sneakers"), NOW)
    record_page_view(ended, Page("product", "sneakers", "a"), NOW)
    credit_dwell(ended, pv, 120, NOW)
    stored = Profile(visits=1, first_seen=NOW - 10, last_seen=NOW - 10, affinity={"boots": 8.0})
    later = NOW + AFFINITY_HALF_LIFE
    p = merged_profile(stored, later, new_visit=True, ended=ended)
    assert p.visits == 2 and p.last_seen == later and p.first_seen == NOW - 10
    assert p.affinity["sneakers"] == 1 + 1 + 2  # 1 view, 1 product, 2 minutes
    assert p.affinity["boots"] == pytest.approx(4.0, rel=0.01)  # halved after one half-life


def test_key_events_add_without_counting_a_visit() -> None:
    stored = Profile(visits=2, orders=1, revenue=10_00, first_seen=1, last_seen=5)
    p = merged_profile(stored, NOW, new_visit=False, orders=1, revenue=30_00, redeemed=1)
    assert (p.visits, p.orders, p.revenue, p.offers_redeemed, p.last_seen) == (2, 2, 40_00, 1, 5)
    assert merged_profile(None, NOW, new_visit=True).first_seen == NOW


def test_affinity_keeps_the_top_categories() -> None:
    ended = session()
    for i in range(12):
        for _ in range(i + 1):
            record_page_view(ended, Page("category", f"c{i}"), NOW)
    p = merged_profile(None, NOW, new_visit=True, ended=ended)
    assert len(p.affinity) == 8 and "c11" in p.affinity and "c0" not in p.affinity


def test_rule_history_folds_reveals_closes_and_stops() -> None:
    from nudge.keys import key32
    from nudge.visitor.profile import RuleHistory
    from nudge.visitor.tracking import close_rule

    ended = session()
    ended.last_seen = NOW
    ended.shown = {key32("a"): 2, key32("b"): 1}
    close_rule(ended, "b")
    stored = Profile(visits=1, nudges={key32("a"): RuleHistory(total=3, day=NOW // 86400, day_count=1)})
    p = merged_profile(stored, NOW + 60, new_visit=True, ended=ended, stopped=(key32("c"),))
    a, b, c = (p.nudges[key32(k)] for k in "abc")
    assert (a.total, a.day_count) == (5, 3)  # same day: today's count grows
    assert (b.total, b.last_closed) == (1, NOW)
    assert c.stopped and c.total == 0
    assert decode_profile(encode_profile(p)) == p
    ended.last_seen = NOW + 2 * 86400  # reveals on a later day count for that day, afresh
    later = merged_profile(p, NOW + 2 * 86400 + 60, new_visit=True, ended=ended)
    assert later.nudges[key32("a")].day_count == 2 and later.nudges[key32("a")].total == 7
