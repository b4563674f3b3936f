"""Fuzzing message templates and the HTML nudge writes into pages.

Properties: a template compiles or raises TemplateError, renders or raises MissingValue, and its
output is escaped text (no `<`, `>`, quotes; every `&` an entity) that unescapes to exactly the
filled-in message. Every snippet `render` builds has the same element and attribute structure
whatever the rule text, URL, product or nonce put into it: hostile values never add markup, and
links only ever point at this site."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import strategies as st

from nudge.delivery import render
from nudge.delivery.csp import plan_injection
from nudge.offers import Redeemed
from nudge.rules.decide import Nudge
from nudge.rules.model import Action, Rule
from nudge.rules.product_feed import CatalogProduct
from nudge.rules.templates import FILTERS, MissingValue, TemplateError, _format, compile_template
from nudge.visitor.attributes import ATTRIBUTE_PATHS
from nudge.visitor.pages import same_site_path

from .profile import fuzz
from .strategies import SHORT, TEXT

LEAVES = tuple(p.replace("*", "sneakers") for p in ATTRIBUTE_PATHS)
PLACEHOLDERS = st.builds(
    lambda path, filt, pad: "{{" + pad + path + (f" | {filt}" if filt else "") + pad + "}}",
    st.sampled_from(LEAVES) | SHORT, st.sampled_from([None, *FILTERS, "bogus", ""]), st.sampled_from(["", " ", "  "]),
)
BRACES = st.sampled_from(["{{", "}}", "{", "}", "{{{", "}}}"])
TEMPLATES = st.lists(TEXT | PLACEHOLDERS | BRACES, max_size=6).map("".join)
VALUES = TEXT | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.booleans() | st.none() | st.just([1])


def attributes_with(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


ENTITY = re.compile(r"&(amp|lt|gt|quot|#x27);")


def assert_escaped_text(out: str) -> None:
    assert not set(out) & set("<>\"'"), out
    assert ENTITY.sub("", out).count("&") == 0, out


@fuzz(TEMPLATES, st.dictionaries(st.sampled_from(LEAVES), VALUES, max_size=10), st.sampled_from(["USD", "EUR", "SEK"]))
def test_templates(text: str, values: dict[str, Any], currency: str) -> None:
    try:
        template = compile_template(text)
    except TemplateError as exc:
        assert str(exc)
        return
    try:
        out = template.render(attributes_with(values), currency)
    except MissingValue:
        assert template.fields
        return
    assert_escaped_text(out)
    expected = [template.literals[0]]
    for (path, filt), literal in zip(template.fields, template.literals[1:], strict=True):
        expected += [_format(values[path], filt, currency), literal]
    assert html.unescape(out) == "".join(expected)


class _Structure(HTMLParser):
    """The elements and attribute names of a snippet, and every href/src it links to."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: list[tuple[str, ...]] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # a nonce is there or not (only a well-formed one is copied): the rest must not change
        self.shape.append((tag, *sorted(name for name, _ in attrs if name != "nonce")))
        assert all(re.fullmatch(r"[A-Za-z0-9+/_=-]+", v or "") for name, v in attrs if name == "nonce")
        self.links += [v or "" for name, v in attrs if name in ("href", "src")]

    def handle_endtag(self, tag: str) -> None:
        self.shape.append(("/" + tag,))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:  # nothing we write has comments
        self.shape.append(("<!--",))


def structure(snippet: str) -> _Structure:
    parser = _Structure()
    parser.feed(snippet)
    parser.close()
    return parser


def snippets(text: str, href: str, product: CatalogProduct, nonce: str, code: str) -> list[str]:
    action = Action("modal", text, text, text, text, "")
    rule = Rule(id=text or "r", description="", enabled=True, pages=(), trigger="exit_intent", when={},
                action=action, offer=None, priority=0, file="r.toml")
    nudge = Nudge(rule, 0)
    return [
        render.modal(nudge, href),
        render.banner(nudge, href),
        render.banner(nudge, None),
        render.slot_content(nudge, href),
        render.badge(nudge),
        render.recommendations(nudge, [product], "USD"),
        render.notice(text),
        render.offer_banner(Redeemed(text, code, 10, text, 0), "applied"),
        render.offer_banner(Redeemed(text, code, 0, text, 0, 5.0), "code"),
        render.offer_banner(Redeemed(text, code, 10, text, 0), "cart"),
        render.style_tag(nonce)[: len('<style id="nudge-style"') + 40],
        render.stylesheet_link(href, nonce),
        render.client_script_tag(href, nonce),
    ]


HREFS = TEXT | st.sampled_from(["//evil.example/", "/\\evil.example", "https://evil.example", "javascript:alert(1)",
                                "/%2F%2Fevil.example", "/ok?a=<b>&c=\"d\"", "/_nudge/redeem?t=a.b"])


@fuzz(TEXT, HREFS, TEXT, HREFS, HREFS, TEXT | st.sampled_from(["abc", "a+b/c=", "n' onload='x"]), TEXT)
def test_rendered_snippets(text: str, href: str, name: str, url: str, image: str, nonce: str, code: str) -> None:
    def x(value: str) -> str:  # the same snippet with plain values: what the markup must stay
        return "x" if value else ""

    product = CatalogProduct(name or "p", "p", name, url, "c", 1.0, image)
    plain_product = CatalogProduct("p", "p", x(name), "/p", "c", 1.0, x(image))
    benign = snippets(x(text), x(href) and "/x", plain_product, "abc", x(code))
    for i, (out, plain) in enumerate(zip(snippets(text, href, product, nonce, code), benign, strict=True)):
        got, want = structure(out), structure(plain)
        assert [s for s in got.shape if s[0] != "style"] == [s for s in want.shape if s[0] != "style"], (out, plain)
        for link in got.links if i < 6 else ():  # rule and catalog links (the last ones are nudge's own paths)
            # "": an image URL that is neither same-site nor https is dropped
            assert link in ("#", "") or same_site_path(link) or link.startswith("https://") and link == image


@fuzz(st.dictionaries(SHORT, TEXT | st.integers() | st.booleans() | st.none() | st.lists(TEXT, max_size=3), max_size=6))
def test_page_config_json(config: dict[str, Any]) -> None:
    out = render.config_script(config)
    inner = out.removeprefix('<script type="application/json" id="nudge-config">').removesuffix("</script>")
    assert not set(inner) & set("<>&") and json.loads(inner) == config


@fuzz(TEXT | st.lists(st.sampled_from(["script-src", "style-src", "'nonce-", "'strict-dynamic'", "'self'",
                                       "'unsafe-inline'", "default-src", ";", ",", " ", "abc=", "'", "*", "https:"]),
                      max_size=12).map("".join))
def test_csp_header(policy: str) -> None:
    injection = plan_injection(policy, "https://shop.example")
    for nonce in (injection.script_nonce, injection.style_nonce):
        if nonce is not None:
            tag = render.client_script_tag("/_nudge/client.js", nonce)
            assert structure(tag).shape == [("script", "defer", "src"), ("/script",)] and f'nonce="{nonce}"' in tag


def test_the_benign_snippets_are_what_the_oracle_thinks() -> None:
    """The structure oracle above compares against these: make sure they are real markup."""
    product = CatalogProduct("p", "p", "p", "/p", "c", 1.0, "/i.jpg")
    shapes = [structure(b).shape for b in snippets("x", "/x", product, "abc", "C")]
    assert shapes[0][0] == ("div", "aria-labelledby", "aria-modal", "class", "data-nudge-rule", "hidden", "id", "role")
    assert all(shape for shape in shapes)
    with pytest.raises(AssertionError):
        assert_escaped_text("<b>")
