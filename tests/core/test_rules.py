from __future__ import annotations

import pytest

from nudge.rules import RuleError, load_ruleset

from .factories import repo_rule_files

PAGES = repo_rule_files()["pages.toml"]
RULE = """
id = "r1"
trigger = "exit_intent"
[when]
"cart.items" = 0
[action]
kind = "modal"
title = "Hi"
"""


def test_repo_rules_load() -> None:
    rs = load_ruleset(repo_rule_files())
    rule = rs.rule("sneakers-exit-intent")
    assert rule is not None and rule.offer is not None
    assert rule.offer.percent == 10 and rule.offer.redirect == "/collections/sneakers"
    assert rule.action.body == "Get 10% off sneakers today only"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("id = 5", "id", "expected str"),
        (RULE.replace('"r1"', '"Bad Id"'), "id", "lowercase"),
        (RULE.replace("exit_intent", "exit"), "trigger", "unknown trigger"),
        (RULE.replace('kind = "modal"', 'kind = "popup"'), "action.kind", "unknown kind"),
        (RULE + "colour = 1\n", "action.colour", "unknown field"),
        (RULE.replace('"cart.items" = 0', '"cart.items" = { "$gte_" = 0 }'), "when.cart.items.$gte_", "unknown operator"),
        (RULE + '[offer]\ncode = "X1"\npercent = 95\ncategory = "s"\nredirect = "/"\n', "offer.percent", "1..90"),
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "s"\nredirect = "//evil.com"\n', "offer.redirect", "same-site"),
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "s"\nredirect = "https://evil.com/"\n', "offer.redirect", "same-site"),
        (RULE + "[caps]\nper_session = 0\n", "caps.per_session", "1..100"),
        ("id = [", "-", "not valid TOML"),
    ],
)
def test_errors_name_file_and_field(text: str, field: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        load_ruleset({"pages.toml": PAGES, "bad.toml": text})
    assert err.value.file == "bad.toml"
    assert err.value.field == field
    assert message in err.value.message


def test_duplicate_ids_and_missing_pages_are_errors() -> None:
    with pytest.raises(RuleError, match="duplicate"):
        load_ruleset({"pages.toml": PAGES, "a.toml": RULE, "b.toml": RULE})
    with pytest.raises(RuleError, match="page patterns"):
        load_ruleset({"a.toml": RULE})


def test_priority_then_file_order() -> None:
    rs = load_ruleset({
        "pages.toml": PAGES,
        "a.toml": RULE.replace('"r1"', '"low"'),
        "b.toml": RULE.replace('"r1"', '"high"') + "",
        "c.toml": 'priority = 5\n' + RULE.replace('"r1"', '"top"'),
    })
    assert [r.id for r in rs.rules] == ["top", "low", "high"]
