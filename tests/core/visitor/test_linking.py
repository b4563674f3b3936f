"""Linking a browser to the shop's customer (visitor/linking.py): the first device owns the link,
later ones adopt its visitor id."""

from __future__ import annotations

from nudge.visitor.identity import short
from nudge.visitor.linking import adopt_link, already_linked, owns_link, with_link
from nudge.visitor.profile import Profile
from tests.core.factories import session

HASHED = "ab" * 16
OWNER = "0123456789abcdef"  # another device's visitor id (16 hex digits)


def test_the_first_browser_seen_for_a_customer_owns_the_link() -> None:
    s = session()
    assert not already_linked(s, HASHED)
    assert adopt_link(s, HASHED, None) is True  # nobody owns it: write the link
    assert s.identity == short(HASHED) and s.visitor == b"visitor1"
    assert already_linked(s, HASHED)


def test_a_later_browser_adopts_the_owners_visitor_id() -> None:
    s = session()
    assert adopt_link(s, HASHED, OWNER.encode()) is False
    assert s.visitor_id == OWNER and s.identity == short(HASHED)


def test_the_owner_itself_changes_nothing() -> None:
    s = session()
    assert adopt_link(s, HASHED, s.visitor_id.encode()) is False
    assert s.visitor == b"visitor1" and s.identity == short(HASHED)


def test_an_unreadable_owner_leaves_the_browser_unlinked_and_its_id_kept() -> None:
    s = session()
    assert adopt_link(s, HASHED, b"zzzzzzzzzzzzzzzz") is False  # 16 characters, not hex
    assert s.identity is None and s.visitor == b"visitor1"
    short_owner = session()
    assert adopt_link(short_owner, HASHED, b"abc") is False  # not a visitor id: kept, but linked
    assert short_owner.visitor == b"visitor1" and short_owner.identity == short(HASHED)


def test_forgetting_erases_a_link_only_while_it_is_this_visitors() -> None:
    assert owns_link(OWNER.encode(), OWNER)
    assert not owns_link(b"fedcba9876543210", OWNER)
    assert not owns_link(None, OWNER)


def test_a_new_link_is_recorded_in_the_profile_written() -> None:
    profile = Profile(visits=3)
    assert with_link(profile, None) is profile
    assert with_link(profile, HASHED).identity == HASHED and with_link(profile, HASHED).visits == 3
