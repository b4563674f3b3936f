from __future__ import annotations

import pytest

from nudge.signing import BadData, BadSignature, Signer, parse_secrets


def test_round_trip_and_rotation() -> None:
    old = Signer([b"old"], "session")
    token = old.sign(b"payload")
    rotated = Signer([b"new", b"old"], "session")
    assert rotated.unsign(token) == b"payload"
    assert rotated.sign(b"payload") != token  # signs with the newest secret
    with pytest.raises(BadSignature):
        Signer([b"new"], "session").unsign(token)


def test_the_empty_payload_round_trips_and_is_still_signed() -> None:
    signer = Signer([b"s"], "session")
    token = signer.sign(b"")
    assert token.startswith(".") and signer.unsign(token) == b""
    with pytest.raises(BadSignature):
        Signer([b"other"], "session").unsign(token)


def test_purposes_do_not_accept_each_others_tokens() -> None:
    token = Signer([b"s"], "session").sign(b"x")
    with pytest.raises(BadSignature):
        Signer([b"s"], "offer-token").unsign(token)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", "é.é", "!!!.???", "YQ.YQ"])
def test_garbage_is_bad_data(token: str) -> None:
    with pytest.raises(BadData):
        Signer([b"s"], "session").unsign(token)


def test_tampering_any_byte_is_detected() -> None:
    signer = Signer([b"s"], "session")
    token = signer.sign(b"hello world")
    for i in range(len(token)):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(BadData):
            signer.unsign(flipped)


def test_parse_secrets() -> None:
    assert parse_secrets(" a, b  c ") == [b"a", b"b", b"c"]
    assert parse_secrets("") == [] and parse_secrets(None) == []
    with pytest.raises(ValueError):
        Signer([], "session")
