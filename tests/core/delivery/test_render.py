from __future__ import annotations

import json
import re

import pytest

from nudge.delivery import render
from nudge.rules.decide import Nudge
from nudge.rules.model import Action, Rule

EVIL = '<script>alert("x")</script>&\'"'


def rule(text: str) -> Rule:
    action = Action("modal", text, text, text, text, "")
    return Rule("r", "", True, (), "exit_intent", {}, action, None, 1, 0, "r.toml")


def test_modal_escapes_every_value() -> None:
    assert 'href="#"' in render.modal(Nudge(rule("t"), 0), "//evil.example/")
    html = render.modal(Nudge(rule(EVIL), 0), '/x?a="b"&c=<d>')
    assert "<script>" not in html and 'alert("x")' not in html
    assert html.count("&lt;script&gt;") == 4
    assert 'href="/x?a=&quot;b&quot;&amp;c=&lt;d&gt;"' in html
    assert " hidden>" in html  # rendered hidden: the client reveals it on the trigger


def test_config_json_cannot_close_its_script_tag() -> None:
    out = render.config_script({"x": "</script><script>alert(1)</script>", "y": "&"})
    inner = re.fullmatch(r'<script type="application/json" id="nudge-config">(.*)</script>', out)
    assert inner and "<" not in inner.group(1) and "&" not in inner.group(1)
    assert json.loads(inner.group(1))["x"] == "</script><script>alert(1)</script>"


def test_every_template_escapes_hostile_values() -> None:
    import dataclasses

    from nudge.offers import Redeemed

    r = dataclasses.replace(rule(EVIL), id="r", action=Action("banner", EVIL, EVIL, EVIL, EVIL, ""))
    for html in (
        render.banner(Nudge(r, 0), 'javascript:alert("x")"><script>'),
        *(render.offer_banner(Redeemed("r", EVIL, 10, EVIL, 0), wording) for wording in ("code", "cart", "applied")),
        render.notice(EVIL),
    ):
        assert "<script>" not in html and 'alert("x")' not in html and "'\"" not in html
        assert "javascript:" not in html and "&lt;script&gt;" in html


def test_delayed_banners_float_and_immediate_ones_sit_in_the_page() -> None:
    import dataclasses

    later = dataclasses.replace(rule("t"), action=Action("banner", "t", "", "", "", ""), trigger="exit_intent")
    now = dataclasses.replace(later, trigger="page_load")
    floating = render.banner(Nudge(later, 0), None)
    assert "nudge-floating" in floating and " hidden" in floating
    assert "nudge-floating" not in render.banner(Nudge(now, 0), None)
    assert "nudge-floating" in render.banner(Nudge(now, 0, wait=20), None)


def test_ascii_html_reads_the_same_in_any_ascii_compatible_charset() -> None:
    html = '<div title="Café">10 € off — today 🎉</div>'
    out = render.ascii_html(html)
    assert out.isascii() and out == '<div title="Caf&#233;">10 &#8364; off &#8212; today &#127881;</div>'
    assert render.ascii_html("<p>plain</p>") == "<p>plain</p>"


def test_what_nudge_puts_in_raw_text_elements_is_ascii_already() -> None:
    # <style> and <script> contents are not decoded for references: they must need none
    assert render.style_tag("nonce-1").isascii()
    assert render.config_script({"title": "Café — 10 €"}).isascii()


@pytest.mark.parametrize("wording, text", [
    ("code", "10% off sneakers: use code <strong>SNEAKERS10</strong> at checkout"),
    ("cart", "10% off sneakers: code <strong>SNEAKERS10</strong> added to your cart"),
    ("applied", "10% off sneakers applied: code <strong>SNEAKERS10</strong>"),
    ("<script>", "10% off sneakers: use code <strong>SNEAKERS10</strong> at checkout"),  # unknown: honest
])
def test_the_offer_banner_says_applied_only_when_told(wording: str, text: str) -> None:
    from nudge.offers import Redeemed

    html = render.offer_banner(Redeemed("r", "SNEAKERS10", 10, "sneakers", 0), wording)
    assert f"<span>{text}</span>" in html and "<script>" not in html
    assert ('id="nudge-offer-applied"' in html) == (wording == "applied")
    assert ("applied" in html) == (wording == "applied")
