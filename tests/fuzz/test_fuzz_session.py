"""Fuzzing the cookie side: the Cookie header parser, the signer, and the session cookie codec.

Properties: nothing but the documented error escapes (BadData from the codec and signer, none at
all from the header parser and `load`); any change to a signed value is rejected; whatever a visit
does, its cookie round-trips and stays within 1 KiB."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from nudge.rules.load import load_ruleset
from nudge.signing import BadData, Signer
from nudge.visitor.beacon import BeaconError, parse_beacon
from nudge.visitor.cookies import OUR_COOKIES, parse_cookies, set_cookie, without_our_cookies
from nudge.visitor.session import MAX_COOKIE_BYTES, Session, SessionCodec, _to_wire
from nudge.visitor.tracking import apply_beacon, credit_dwell, parse_dwell_cookie, record_page_view

from ..core.factories import NOW, repo_rule_files
from .profile import fuzz
from .strategies import B64, MSGPACK, MUTATIONS, PATHS, QUERIES, REFERRERS, TEXT, mutate

SECRET = b"fuzz-secret"
CODEC = SessionCodec(Signer([SECRET], "session"))
CLASSIFIER = load_ruleset(repo_rule_files()).classifier

COOKIE_NAME = st.text(alphabet=st.characters(codec="ascii", exclude_characters=";= \t\r\n\"", min_codepoint=33),
                      min_size=1, max_size=12)
COOKIE_VALUE = st.text(alphabet=B64 + ".!#$&'()*+-/:<>?@[]^`{|}~", max_size=40)  # no % (it is decoded)


@fuzz(TEXT | st.lists(TEXT, max_size=40).map("; ".join))
def test_cookie_header_parser(header: str) -> None:
    cookies = parse_cookies(header)
    assert all(isinstance(k, str) and k and ";" not in k and isinstance(v, str) for k, v in cookies.items())
    forwarded = without_our_cookies(header)
    assert forwarded is None or not set(parse_cookies(forwarded)) & set(OUR_COOKIES)


@fuzz(st.dictionaries(COOKIE_NAME, COOKIE_VALUE, max_size=12),
      st.lists(st.tuples(COOKIE_NAME, COOKIE_VALUE), max_size=5), st.booleans())
def test_cookie_header_round_trip(jar: dict[str, str], later: list[tuple[str, str]], spaced: bool) -> None:
    """What Set-Cookie writes comes back from the Cookie header; the first of a name wins."""
    pairs = [*jar.items(), *later]
    header = ("; " if spaced else ";").join(set_cookie(n, v, max_age=60, secure=True).split(";")[0] for n, v in pairs)
    parsed = parse_cookies(header)
    assert parsed == {**{n: v for n, v in reversed(later)}, **jar}


@fuzz(TEXT | st.builds(lambda a, b: f"{a}.{b}", st.integers(-99, 10**7), st.integers(-99, 10**8)))
def test_dwell_cookie(value: str) -> None:
    """`nudge_dw`, written by the client script (so by anyone): bounded numbers or nothing."""
    dwell = parse_dwell_cookie(value)
    assert dwell is None or 0 <= dwell[0] <= 99_999 and 0 <= dwell[1] <= 999_999


@fuzz(st.binary(max_size=300), st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3),
      st.text(max_size=20), st.text(max_size=20))
def test_signer_round_trip_rotation_and_purpose(payload: bytes, secrets: list[bytes], purpose: str,
                                                 other_purpose: str) -> None:
    token = Signer(secrets, purpose).sign(payload)
    assert Signer(secrets, purpose).unsign(token) == payload
    assert Signer([b"newer-secret", *secrets], purpose).unsign(token) == payload  # rotated: still good
    if other_purpose != purpose:
        with pytest.raises(BadData):
            Signer(secrets, other_purpose).unsign(token)
    if b"newer-secret" not in secrets:
        with pytest.raises(BadData):
            Signer([b"newer-secret"], purpose).unsign(token)


@fuzz(TEXT | st.text(B64 + ".=", max_size=200))
def test_unsign_anything(token: str) -> None:
    try:
        Signer([SECRET], "session").unsign(token)
    except BadData:
        return
    pytest.fail(f"unsigned text accepted: {token!r}")


@fuzz(TEXT | st.text(B64 + ".", max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_session_cookie_decoder_on_anything(value: str) -> None:
    with pytest.raises(BadData):
        CODEC.decode(value)
    assert CODEC.load(value, NOW).is_new  # never an error: a fresh session


def _wire_of_a_visit() -> list[Any]:
    s = Session.fresh(NOW, b"visitor1")
    record_page_view(s, CLASSIFIER.classify("/collections/sneakers/products/aero"), NOW, "utm_source=x", "https://a.example/")
    record_page_view(s, CLASSIFIER.classify("/search"), NOW + 5, "q=red shoes")
    s.cart, s.cart_value, s.cart_changed, s.shown, s.closed = {"SKU-1": 2}, 5000, NOW + 6, {7: 1}, [9]
    return _to_wire(s)


@fuzz(st.lists(st.tuples(st.integers(0, 18), MSGPACK), min_size=1, max_size=4) | MSGPACK.map(lambda v: [(-1, v)]))
def test_signed_malformed_sessions(edits: list[tuple[int, Any]]) -> None:
    """Even a validly signed payload (an old format, a bug, a leaked key) is BadData or a sound session."""
    wire: Any = _wire_of_a_visit()
    for index, value in edits:
        if index < 0:
            wire = value
        else:
            wire[index] = value
    try:
        payload = msgpack.packb(wire, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        assume(False)
    try:
        session = CODEC.decode(Signer([SECRET], "session").sign(payload))
    except BadData:
        return
    value = CODEC.encode(session)  # what decodes must encode again, within bounds
    assert len(value) <= MAX_COOKIE_BYTES and CODEC.decode(value).visitor == session.visitor


def _a_cookie() -> str:
    s = Session.fresh(NOW, b"visitor1")
    record_page_view(s, CLASSIFIER.classify("/collections/sneakers"), NOW)
    return CODEC.encode(s)


GOOD = _a_cookie()


@fuzz(MUTATIONS)
def test_any_change_to_a_session_cookie_is_rejected(mutations: list[tuple[str, int, Any]]) -> None:
    good = GOOD
    forged = mutate(good, mutations)
    assume(forged != good)
    with pytest.raises(BadData):
        CODEC.decode(forged)
    assert CODEC.load(forged, NOW).is_new


STEPS = st.lists(st.one_of(
    st.tuples(st.just("page"), PATHS, QUERIES, REFERRERS, TEXT),
    st.tuples(st.just("dwell"), st.integers(-5, 70_000), st.integers(-5, 10**7), st.none(), st.none()),
    st.tuples(st.just("beacon"), st.binary(max_size=200) | st.sampled_from([
        b'{"pv":1,"dwell":30}',
        b'{"events":[{"type":"add_to_cart","items":[{"id":"SKU-1","quantity":2}],"value":59.9}]}',
        b'{"events":[{"type":"purchase","value":120}]}', b'{"events":[{"type":"nudge_shown","rule":"r-1"}]}',
        b'{"events":[{"type":"remove_from_cart","items":[{"id":"SKU-1"}]}]}']), st.none(), st.none(), st.none()),
), max_size=60)


@fuzz(STEPS, st.integers(0, 4000))
def test_any_visit_round_trips_within_the_cookie_bound(steps: list[tuple[Any, ...]], idle: int) -> None:
    """Pages from any URL, query and referrer (through the real classifier), dwell and beacons:
    the cookie stays under 1 KiB and decodes to exactly the session it was made from."""
    s = Session.fresh(NOW, b"visitor1")
    now = NOW
    for kind, a, b, c, d in steps:
        now += 7
        if kind == "page":
            record_page_view(s, CLASSIFIER.classify(a), now, b, c, d)
        elif kind == "dwell":
            credit_dwell(s, a, b, now)
        else:
            try:
                beacon = parse_beacon(a, "application/json")
            except BeaconError:
                continue
            apply_beacon(s, beacon, now)
    value = CODEC.encode(s)  # may shed old detail from `s` to fit
    assert len(value) <= MAX_COOKIE_BYTES
    back = CODEC.decode(value)
    assert dataclasses.replace(back, is_new=s.is_new, ended=s.ended) == s
    later = CODEC.load(value, now + idle)
    assert later.visitor == s.visitor and later.cart == s.cart
