"""Fuzzing the signed things an offer and a preview travel in: the button token, the redeemed
offer's cookie and the preview link.

Properties: a verifier answers with its documented result (BadData from `verify`, None from the
cookie and preview readers), never another exception, even for validly signed garbage; any change
to a signed value is rejected; a token works only for its visitor, purpose and time; what is
minted reads back as it was."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from nudge.offers import TOKEN_TTL, OfferTokens, Redeemed
from nudge.rules.model import Rule
from nudge.rules.preview import MAX_HOURS, Preview, PreviewTokens
from nudge.signing import BadData, Signer

from ..core.factories import NOW, repo_ruleset
from .profile import fuzz
from .strategies import B64, MSGPACK, MUTATIONS, TEXT, mutate

SECRETS = [b"fuzz-secret"]
TOKEN_SIGNER, COOKIE_SIGNER, PREVIEW_SIGNER = (Signer(SECRETS, p) for p in ("offer-token", "offer-cookie", "preview"))
OFFERS = OfferTokens(TOKEN_SIGNER, COOKIE_SIGNER)
PREVIEWS = PreviewTokens(PREVIEW_SIGNER)
RULE = repo_ruleset().rule("sneakers-exit-intent")
assert RULE is not None
VISITOR = "00112233445566aa"
TOKEN = OFFERS.mint(RULE, VISITOR, NOW)
COOKIE = OFFERS.cookie(Redeemed(RULE.id, "SNEAKERS10", 10, "sneakers", NOW + 3600))
PREVIEW = PREVIEWS.mint(RULE.id, 1, NOW)
ANYTHING = TEXT | st.text(B64 + ".", max_size=600) | st.none()


def sound(redeemed: Redeemed | None) -> None:
    """A redeemed offer the edge can use: its header, description and price arithmetic work."""
    if redeemed is not None:
        assert "\r" not in redeemed.header_value() and "\n" not in redeemed.header_value()
        assert redeemed.describe
        redeemed.price_after("129.00")


@fuzz(ANYTHING, st.integers(0, 2**40))
def test_offer_readers_on_anything(value: str | None, now: int) -> None:
    if value is not None:
        with pytest.raises(BadData):
            OFFERS.verify(value, VISITOR, now)
    assert OFFERS.from_cookie(value, now) is None
    assert PREVIEWS.verify(value, now) is None


@fuzz(MSGPACK | st.lists(MSGPACK, min_size=3, max_size=6), st.integers(0, 2**40))
def test_validly_signed_garbage(payload: Any, now: int) -> None:
    """A leaked key, an older layout or a bug upstream must still not crash a reader."""
    try:
        data = msgpack.packb(payload)
    except (OverflowError, ValueError, TypeError):
        assume(False)
    try:
        rule = OFFERS.verify(TOKEN_SIGNER.sign(data), VISITOR, now)
        assert isinstance(rule, str)
    except BadData:
        pass
    sound(OFFERS.from_cookie(COOKIE_SIGNER.sign(data), now))
    preview = PREVIEWS.verify(PREVIEW_SIGNER.sign(data), now)
    assert preview is None or isinstance(preview.rule, str) and isinstance(preview.variant, int)


@fuzz(MUTATIONS, st.sampled_from(["token", "cookie", "preview"]))
def test_any_change_to_an_offer_or_preview_is_rejected(mutations: list[tuple[str, int, Any]], which: str) -> None:
    good = {"token": TOKEN, "cookie": COOKIE, "preview": PREVIEW}[which]
    forged = mutate(good, mutations)
    assume(forged != good)
    if which == "token":
        with pytest.raises(BadData):
            OFFERS.verify(forged, VISITOR, NOW)
    elif which == "cookie":
        assert OFFERS.from_cookie(forged, NOW) is None
    else:
        assert PREVIEWS.verify(forged, NOW) is None


RULE_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,47}", fullmatch=True)
VISITORS = st.binary(min_size=8, max_size=8).map(bytes.hex)


@fuzz(RULE_IDS, VISITORS, VISITORS, st.integers(0, 2**33), st.integers(-10, TOKEN_TTL + 10))
def test_tokens_bind_visitor_and_time(rule_id: str, visitor: str, other: str, minted: int, later: int) -> None:
    assert RULE is not None
    token = OFFERS.mint(dataclasses.replace(RULE, id=rule_id), visitor, minted)
    now = minted + later
    if later <= TOKEN_TTL:
        assert OFFERS.verify(token, visitor, now) == rule_id
    else:
        with pytest.raises(BadData, match="expired"):
            OFFERS.verify(token, visitor, now)
    if other != visitor:
        with pytest.raises(BadData, match="another visitor"):
            OFFERS.verify(token, other, minted)
    assert OFFERS.from_cookie(token, minted) is None and PREVIEWS.verify(token, minted) is None  # purposes
    with pytest.raises(BadData):
        OfferTokens(Signer([b"guessed"], "offer-token"), COOKIE_SIGNER).verify(token, visitor, minted)


CODES = st.from_regex(r"[A-Z0-9][A-Z0-9_-]{0,31}", fullmatch=True)


@fuzz(RULE_IDS, CODES, st.integers(1, 90), st.text(max_size=48), st.integers(0, 2**40), st.integers(0, 2**40),
      st.none() | st.floats(0.01, 10_000), st.integers(0, 72), st.integers(-1, 3))
def test_minted_values_read_back(rule_id: str, code: str, percent: int, category: str, expires: int, now: int,
                                 amount: float | None, hours: int, variant: int) -> None:
    redeemed = Redeemed(rule_id, code, 0 if amount is not None else percent, category, expires, amount)
    assert OFFERS.from_cookie(OFFERS.cookie(redeemed), now) == (redeemed if expires > now else None)
    with pytest.raises(BadData):  # an offer cookie is no button token
        OFFERS.verify(OFFERS.cookie(redeemed), VISITOR, 0)
    if 1 <= hours <= MAX_HOURS:
        link = PREVIEWS.mint(rule_id, variant, now, hours)
        assert PREVIEWS.verify(link, now + hours * 3600) == Preview(rule_id, variant, now + hours * 3600)
        assert PREVIEWS.verify(link, now + hours * 3600 + 1) is None
    else:
        with pytest.raises(ValueError):
            PREVIEWS.mint(rule_id, variant, now, hours)


def test_the_rule_used_here_has_an_offer() -> None:
    assert isinstance(RULE, Rule) and RULE.offer is not None
