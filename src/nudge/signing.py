"""HMAC-SHA256 signing of small payloads, in the manner of itsdangerous.

A token is ``base64url(payload) "." base64url(mac)``, the MAC being HMAC-SHA256 truncated to
128 bits (cookies are small; 128-bit tags are the common floor, e.g. AES-GCM). Several secrets may be configured (newest
first) so keys can rotate: we sign with the newest and accept any. Each purpose (session cookie,
offer token) derives its own key, so a token minted for one purpose is never accepted for another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

MAC_BYTES = 16


class BadData(Exception):
    """Input that is not a token we issued."""


class BadSignature(BadData):
    """The token is well-formed but its signature does not match any secret."""


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise BadData("token is not ASCII") from exc
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadData("token is not base64url") from exc
    if b64encode(data) != text:  # one token, one spelling: no malleable padding bits
        raise BadData("token is not canonical base64url")
    return data


def parse_secrets(value: str | None) -> list[bytes]:
    """Secrets from config: one or more, separated by commas or whitespace, newest first."""
    if not value:
        return []
    return [s.encode("utf-8") for s in value.replace(",", " ").split() if s]


class Signer:
    """Signs and verifies payloads for one purpose under a list of secrets (newest first)."""

    def __init__(self, secrets: list[bytes], purpose: str) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        label = purpose.encode("utf-8")
        self._keys = [hmac.new(s, b"nudge/" + label, hashlib.sha256).digest() for s in secrets]

    def _mac(self, key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def sign(self, payload: bytes) -> str:
        return b64encode(payload) + "." + b64encode(self._mac(self._keys[0], payload))

    def unsign(self, token: str) -> bytes:
        """The payload of a token we signed; raises BadData/BadSignature otherwise."""
        body, sep, mac_text = token.rpartition(".")
        if not sep:  # an empty body is the empty payload: its tag still has to match
            raise BadData("token has no signature")
        payload = b64decode(body)
        mac = b64decode(mac_text)
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, payload), mac):
                return payload
        raise BadSignature("signature does not match")
