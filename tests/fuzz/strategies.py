"""Hypothesis strategies the fuzz targets share: hostile text, JSON-like values, URL paths,
visits, and the ways a signed value can be tampered with."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

# Characters that break things when they reach HTML, headers, URLs or cookie syntax.
HOSTILE = "<>&\"'`=/\\;:,.%?#@!{}[]()| \t\r\n\x00\x0b\x7f\u2028\u00e9\u0130\ufffd"
TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(HOSTILE), max_size=80)
SHORT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(HOSTILE), max_size=12)

B64 = string.ascii_letters + string.digits + "-_"

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**64), 2**64)
                | st.floats(allow_nan=False, allow_infinity=False) | SHORT)


def json_values(keys: st.SearchStrategy[str] = SHORT, leaves: int = 20) -> st.SearchStrategy[Any]:
    return st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=5)
                        | st.dictionaries(keys, inner, max_size=5), max_leaves=leaves)


# msgpack can carry what JSON cannot: bytes, and (through the signer) anything we would sign.
MSGPACK_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
                   | st.text(max_size=60) | st.binary(max_size=12))
MSGPACK = st.recursive(MSGPACK_SCALARS, lambda inner: st.lists(inner, max_size=5)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)

SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/") | st.sampled_from("%<>\"' .~"),
                  min_size=1, max_size=60)
PATHS = st.one_of(
    st.builds(lambda c, p: f"/collections/{c}/products/{p}", SEGMENT, SEGMENT),
    st.builds(lambda c: f"/collections/{c}", SEGMENT),
    st.builds(lambda p: f"/products/{p}", SEGMENT),
    st.sampled_from(["/", "/search", "/cart", "/checkout", "/checkout/thank-you", "/checkout/x"]),
    st.builds(lambda s: "/" + s, TEXT),
    TEXT,
)
QUERIES = st.one_of(
    TEXT,
    st.lists(st.tuples(st.sampled_from(["q", "s", "utm_source", "utm_medium", "utm_campaign", "x"]), TEXT),
             max_size=4).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
)
REFERRERS = st.one_of(
    st.none(), TEXT,
    st.builds(lambda h, rest: f"https://{h}/{rest}", SHORT, SHORT),
    st.sampled_from(["http://[", "http://[::1", "https://[::1]:80/x", "http://a:b@[v1.x]/", "//host", "https://x:99999/"]),
)

# Ways a signed value gets tampered with: (kind, position, argument).
MUTATIONS = st.lists(st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 4096), st.sampled_from(B64 + ".=") | st.characters()),
    st.tuples(st.just("insert"), st.integers(0, 4096), st.text(B64 + ".=", min_size=1, max_size=8) | TEXT),
    st.tuples(st.just("delete"), st.integers(0, 4096), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 4096), st.none()),
    st.tuples(st.just("swap"), st.integers(0, 4096), st.none()),  # payload and tag change places
), min_size=1, max_size=3)


def mutate(value: str, mutations: list[tuple[str, int, Any]]) -> str:
    for kind, at, arg in mutations:
        i = at % (len(value) + 1)
        if kind == "replace" and value:
            i = at % len(value)
            value = value[:i] + arg + value[i + 1:]
        elif kind == "insert":
            value = value[:i] + arg + value[i:]
        elif kind == "delete":
            value = value[:i] + value[i + arg:]
        elif kind == "truncate":
            value = value[:i]
        elif kind == "swap":
            body, _, tag = value.rpartition(".")
            value = f"{tag}.{body}"
    return value
