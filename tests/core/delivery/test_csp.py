from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.delivery.csp import MAX_HEADER, NOTHING, UNRESTRICTED, Injection, nonce_attr, plan_injection

ORIGIN = "https://shop.example"

# --- no policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        " ",  # one policy with no directives: dropped, like an absent header
        ";;; ;",
        ", ,",
        "report-uri /csp; upgrade-insecure-requests",  # nothing that governs scripts or styles
        "img-src 'none'; frame-ancestors 'none'",
        "foo bar baz",  # unknown directives are ignored, not errors
    ],
)
def test_no_governing_policy_allows_everything(header: str | None) -> None:
    assert plan_injection(header, ORIGIN) == UNRESTRICTED


def test_report_only_policies_are_not_passed_in() -> None:
    """The caller reads only the enforced header; a report-only policy never blocks anything."""
    headers = {"content-security-policy-report-only": "default-src 'none'"}
    assert plan_injection(headers.get("content-security-policy"), ORIGIN) == UNRESTRICTED


# --- our external <script src> -------------------------------------------------------------------

SCRIPT_CASES = [
    # (header, origin, allowed, nonce)
    ("script-src 'self'", None, True, None),
    ("script-src 'SELF'", None, True, None),  # keywords are case-insensitive
    ("script-src *", None, True, None),
    ("script-src 'none'", ORIGIN, False, None),
    ("script-src", ORIGIN, False, None),  # an empty source list matches nothing
    ("script-src 'none' 'self'", None, True, None),  # 'none' only means something alone
    ("script-src https://cdn.example", ORIGIN, False, None),
    ("script-src 'unsafe-inline'", ORIGIN, False, None),  # inline is not our external file
    ("script-src 'sha256-abc='", ORIGIN, False, None),  # a hash alone does not admit us
    ("script-src 'unsafe-eval' 'report-sample'", ORIGIN, False, None),
    ("script-src 'nonce-abc123'", ORIGIN, True, "abc123"),
    ("script-src 'NONCE-abc123'", ORIGIN, True, "abc123"),  # prefix case-insensitive, value kept
    ("script-src 'nonce-a+b/c_d-e=='", ORIGIN, True, "a+b/c_d-e=="),  # base64 and base64url
    ("script-src 'nonce-first' 'nonce-second'", ORIGIN, True, "first"),
    ("script-src 'self' 'nonce-abc'", ORIGIN, True, "abc"),  # adding the nonce never hurts
    # 'strict-dynamic': host sources, schemes and 'self' are ignored, only the nonce works.
    ("script-src 'strict-dynamic' 'nonce-abc' 'self' https:", ORIGIN, True, "abc"),
    ("script-src 'strict-dynamic' 'self' https: *", ORIGIN, False, None),
    ("script-src 'Strict-Dynamic' 'self'", ORIGIN, False, None),
    ("default-src 'strict-dynamic' 'self'", ORIGIN, False, None),  # also through default-src
    ("script-src 'strict-dynamic' 'sha256-abc='", ORIGIN, False, None),
    # Scheme sources: exact scheme only, and only when we know the page's origin.
    ("script-src https:", ORIGIN, True, None),
    ("script-src HTTPS:", ORIGIN, True, None),
    ("script-src https:", None, False, None),
    ("script-src https:", "http://shop.example", False, None),
    ("script-src http:", ORIGIN, False, None),  # spec upgrades http: to https; we don't rely on it
    ("script-src http:", "http://127.0.0.1:8787", True, None),
    # Host sources: exact scheme, host and port; scheme-less means the page's scheme.
    ("script-src https://shop.example", ORIGIN, True, None),
    ("script-src https://SHOP.example/", ORIGIN, True, None),
    ("script-src shop.example", ORIGIN, True, None),
    ("script-src https://shop.example:443", ORIGIN, True, None),
    ("script-src shop.example:8443", "https://shop.example:8443", True, None),
    ("script-src https://shop.example", "https://shop.example:8443", False, None),
    ("script-src http://shop.example", ORIGIN, False, None),
    ("script-src https://shop.example:8443", ORIGIN, False, None),
    ("script-src https://shop.example/static/", ORIGIN, False, None),  # paths: not ours to guess
    ("script-src *.shop.example", ORIGIN, False, None),  # wildcards: not the page's host
    ("script-src https://www.shop.example", ORIGIN, False, None),
    ("script-src https://shop.example", None, False, None),
    ("script-src https://shop.example", "not an origin", False, None),
    ("script-src 127.0.0.1:8787", "http://127.0.0.1:8787", True, None),
    ("script-src [::1]:8787", "http://[::1]:8787", True, None),
    # Fallback: script-src-elem -> script-src -> default-src.
    ("default-src 'self'", None, True, None),
    ("default-src 'none'", ORIGIN, False, None),
    ("default-src 'nonce-d'", ORIGIN, True, "d"),
    ("default-src 'none'; script-src 'self'", ORIGIN, True, None),
    ("default-src 'self'; script-src 'none'", ORIGIN, False, None),
    ("script-src 'none'; script-src-elem 'self'", ORIGIN, True, None),
    ("script-src 'self'; script-src-elem 'none'", ORIGIN, False, None),
    ("script-src-attr 'none'; style-src 'none'", ORIGIN, True, None),  # neither governs us
    # A sandbox without allow-scripts stops every script, ours included.
    ("sandbox", ORIGIN, False, None),
    ("sandbox allow-forms; script-src 'nonce-abc'", ORIGIN, False, None),
    ("sandbox allow-scripts allow-same-origin", ORIGIN, True, None),
    ("sandbox ALLOW-SCRIPTS", ORIGIN, True, None),
]


@pytest.mark.parametrize(("header", "origin", "allowed", "nonce"), SCRIPT_CASES)
def test_external_script(header: str, origin: str | None, allowed: bool, nonce: str | None) -> None:
    plan = plan_injection(header, origin)
    assert (plan.script, plan.script_nonce) == (allowed, nonce)


# --- hostile or malformed nonces -----------------------------------------------------------------

HOSTILE_NONCES = [
    "'nonce-a\"><script>alert(1)</script>'",
    "'nonce-a<b'",
    "'nonce-a&b'",
    "'nonce-'",  # empty value
    "'nonce-abc===",  # too much padding
    "'nonce-a=b'",  # padding in the middle
    "'nonce-abc",  # unterminated
    "nonce-abc",  # unquoted
    "'nonce-ab'c'",
]


@pytest.mark.parametrize("source", HOSTILE_NONCES)
def test_a_malformed_nonce_is_never_reused(source: str) -> None:
    plan = plan_injection(f"script-src {source}; style-src {source}", ORIGIN)
    assert plan.script_nonce is None and plan.style_nonce is None
    assert not plan.script and not plan.inline_style


@pytest.mark.parametrize(
    ("nonce", "attr"),
    [
        (None, ""),
        ("abc123", ' nonce="abc123"'),
        ("a+b/c_d-e==", ' nonce="a+b/c_d-e=="'),
        ("", ""),
        ('a"b', ""),
        ("a b", ""),
        ("a<b", ""),
        ("a'b", ""),
        ("abc\n", ""),
        ("abc===", ""),
    ],
)
def test_nonce_attr(nonce: str | None, attr: str) -> None:
    assert nonce_attr(nonce) == attr


# --- our inline <style> and <link rel=stylesheet> ------------------------------------------------

STYLE_CASES = [
    # (header, inline, external, nonce)
    ("style-src 'unsafe-inline'", True, False, None),
    ("style-src 'UNSAFE-INLINE'", True, False, None),
    ("style-src 'unsafe-inline' 'self'", True, True, None),
    ("style-src 'self'", False, True, None),
    ("style-src *", False, True, None),
    ("style-src https:", False, True, None),
    ("style-src https://shop.example", False, True, None),
    ("style-src https://cdn.example", False, False, None),
    ("style-src 'none'", False, False, None),
    ("style-src", False, False, None),
    ("style-src 'nonce-s1'", True, True, "s1"),  # CSP3: a nonce admits a <link> too
    # Per spec 'unsafe-inline' is ignored once a nonce or hash is present.
    ("style-src 'unsafe-inline' 'nonce-s1'", True, True, "s1"),
    ("style-src 'unsafe-inline' 'sha256-abc='", False, False, None),
    ("style-src 'unsafe-inline' 'sha512-abc=' 'self'", False, True, None),
    ("style-src 'unsafe-inline' 'nonce-a\"b'", False, False, None),  # even a broken nonce may
    # 'strict-dynamic' means nothing for styles.
    ("style-src 'strict-dynamic' 'unsafe-inline' 'self'", True, True, None),
    # Fallback: style-src-elem -> style-src -> default-src.
    ("default-src 'unsafe-inline'", True, False, None),
    ("default-src 'self'", False, True, None),
    ("default-src 'none'", False, False, None),
    ("default-src 'nonce-d'", True, True, "d"),
    ("default-src 'none'; style-src 'unsafe-inline'", True, False, None),
    ("style-src 'none'; style-src-elem 'unsafe-inline'", True, False, None),
    ("style-src 'unsafe-inline'; style-src-elem 'none'", False, False, None),
    ("style-src-attr 'none'; script-src 'none'", True, True, None),  # neither governs elements
]


@pytest.mark.parametrize(("header", "inline", "external", "nonce"), STYLE_CASES)
def test_style_element(header: str, inline: bool, external: bool, nonce: str | None) -> None:
    plan = plan_injection(header, ORIGIN)
    assert (plan.inline_style, plan.external_style, plan.style_nonce) == (inline, external, nonce)


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("style-src 'unsafe-inline'", True),
        ("style-src 'self'", False),
        ("style-src 'nonce-abc' 'unsafe-inline'", False),  # a nonce can't sit on an attribute
        ("style-src 'unsafe-inline'; style-src-attr 'none'", False),
        ("style-src 'none'; style-src-attr 'unsafe-inline'", True),
        ("style-src-elem 'none'", True),
        ("default-src 'self'", False),
        ("default-src 'unsafe-inline'", True),
        ("script-src 'none'", True),
    ],
)
def test_style_attributes(header: str, allowed: bool) -> None:
    assert plan_injection(header, ORIGIN).style_attr is allowed


# --- several policies: every one must allow it ---------------------------------------------------

MULTI_CASES = [
    # (header, script, script_nonce, inline_style, style_nonce)
    ("script-src 'self', script-src 'self'", True, None, True, None),
    ("script-src 'self', script-src 'none'", False, None, True, None),
    ("script-src 'none', script-src 'self'", False, None, True, None),
    ("default-src 'self', style-src 'unsafe-inline'", True, None, False, None),
    ("script-src 'nonce-a', script-src 'nonce-a'", True, "a", True, None),
    ("script-src 'nonce-a', script-src 'self'", True, "a", True, None),
    # Two different nonces: one element can't carry both.
    ("script-src 'nonce-a', script-src 'nonce-b'", False, None, True, None),
    ("script-src 'nonce-a' 'strict-dynamic', script-src 'nonce-b' 'strict-dynamic'",
     False, None, True, None),
    # ... unless one policy also admits us another way.
    ("script-src 'nonce-a', script-src 'nonce-b' 'self'", True, "a", True, None),
    ("script-src 'nonce-a' 'self', script-src 'nonce-b'", True, "b", True, None),
    ("style-src 'nonce-a', style-src 'nonce-b'", True, None, False, None),
    # The second policy's own nonce switches its 'unsafe-inline' off, so nonce a can't pass it.
    ("style-src 'nonce-a', style-src 'nonce-b' 'unsafe-inline'", True, None, False, None),
    ("style-src 'nonce-a', style-src 'unsafe-inline'", True, None, True, "a"),
    ("style-src 'nonce-a' 'unsafe-inline', style-src 'unsafe-inline'", True, None, True, "a"),
    ("style-src 'unsafe-inline', style-src 'self'", True, None, False, None),
    # No spaces after the commas, and empty policies in between.
    ("script-src 'self',,style-src 'none',", True, None, False, None),
    # Each policy keeps its own first directive.
    ("script-src 'none'; script-src 'self', script-src 'self'", False, None, True, None),
]


@pytest.mark.parametrize(("header", "script", "script_nonce", "inline", "style_nonce"), MULTI_CASES)
def test_every_policy_must_allow(
    header: str, script: bool, script_nonce: str | None, inline: bool, style_nonce: str | None
) -> None:
    plan = plan_injection(header, ORIGIN)
    assert (plan.script, plan.script_nonce, plan.inline_style, plan.style_nonce) == (
        script, script_nonce, inline, style_nonce
    )


def test_external_style_nonce_across_policies() -> None:
    # No inline <style> (hashes in both), but a <link> with nonce a passes: 'self' admits it in the
    # second policy.
    header = "style-src 'nonce-a' 'sha256-x=', style-src 'self' 'sha256-y='"
    assert plan_injection(header, ORIGIN) == Injection(True, None, False, "a", True, False)


# --- how the header is read ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("SCRIPT-SRC 'none'", "script-src 'none'"),  # directive names are case-insensitive
        ("  script-src   'none'  ;  ", "script-src 'none'"),
        ("\tscript-src\t'none'", "script-src 'none'"),
        (";;script-src 'none';;;", "script-src 'none'"),
        ("script-src 'none'; script-src 'self'", "script-src 'none'"),  # the first one wins
        ("Script-Src 'none'; script-src 'self'", "script-src 'none'"),
        ("default-src 'self'; DEFAULT-SRC 'none'", "default-src 'self'"),
        ("style-src 'self'; style-src 'unsafe-inline'", "style-src 'self'"),
    ],
)
def test_header_reading_matches_canonical_form(header: str, expected: str) -> None:
    assert plan_injection(header, ORIGIN) == plan_injection(expected, ORIGIN)


@pytest.mark.parametrize(
    "header",
    [
        "script-src 'self'; " * (MAX_HEADER // 19 + 1),  # over the cap: don't even try
        "script-src 'self' \u00e9",  # non-ASCII: browsers disagree about such tokens
        "script-src 'self'; style-src 'self' \u2028",
        'script-src \'self\' "a, b"',  # Fetch splits on commas outside quotes, browsers may not
        "script-src 'self'\x0b",  # a control character
        "script-src 'self'\x00",
    ],
)
def test_unreadable_headers_allow_nothing(header: str) -> None:
    assert plan_injection(header, ORIGIN) == NOTHING


def test_the_cap_is_inclusive() -> None:
    header = "script-src 'self'" + " " * (MAX_HEADER - len("script-src 'self'"))
    assert len(header) == MAX_HEADER
    assert plan_injection(header, ORIGIN).script


def test_a_typical_shop_policy() -> None:
    header = (
        "default-src 'self'; script-src 'nonce-r4nd0m' 'strict-dynamic' https: 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; img-src * data:; "
        "object-src 'none'; base-uri 'self'; report-uri https://csp.example/r"
    )
    assert plan_injection(header, ORIGIN) == Injection(
        script=True,
        script_nonce="r4nd0m",
        inline_style=True,
        style_nonce=None,
        external_style=True,
        style_attr=True,
    )


# --- never raises --------------------------------------------------------------------------------

NONCE_OUT = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
PIECES = st.sampled_from(
    [
        "script-src", "script-src-elem", "style-src", "style-src-elem", "style-src-attr",
        "default-src", "sandbox", "allow-scripts", "'self'", "'none'", "*", "https:", "http:",
        "'unsafe-inline'", "'strict-dynamic'", "'nonce-abc'", "'nonce-xyz=='", "'nonce-",
        "'sha256-abc='", "shop.example", "https://shop.example:443/", "[::1]", ";", ",", " ",
        "\t", "'", ":", "=",
    ]
)
HEADERS = st.one_of(st.text(max_size=300), st.lists(PIECES, max_size=40).map(" ".join))
ORIGINS = st.one_of(st.none(), st.just(ORIGIN), st.just("http://[::1]:8787"), st.text(max_size=40))


@settings(max_examples=400, deadline=None)
@given(HEADERS, ORIGINS)
def test_never_raises_and_never_emits_a_bad_nonce(header: str, origin: str | None) -> None:
    plan = plan_injection(header, origin)
    assert isinstance(plan, Injection)
    for nonce in (plan.script_nonce, plan.style_nonce):
        if nonce is not None:  # only ever a well-formed nonce taken from the header itself
            assert NONCE_OUT.fullmatch(nonce)
            assert re.search(f"(?i:'nonce-){re.escape(nonce)}'", header)
    assert plan.script or plan.script_nonce is None
