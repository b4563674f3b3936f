from __future__ import annotations

import pytest

from nudge.rules.load import RuleError, load_ruleset
from tests.core.factories import repo_rule_files

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
        (RULE.replace('"cart.items" = 0', '"cart.items" = { "$gte_" = 0 }'), "when.cart.items.$gte_",
         "unknown operator"),
        (RULE + '[offer]\ncode = "X1"\npercent = 95\ncategory = "s"\nredirect = "/"\n', "offer.percent", "1..90"),
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "s"\nredirect = "//evil.com"\n',
         "offer.redirect", "same-site"),
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "s"\nredirect = "https://evil.com/"\n',
         "offer.redirect", "same-site"),
        # the category travels in the X-Nudge-Offer header: no header injection, no extra fields
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "s\\r\\nX-Evil: 1"\nredirect = "/"\n',
         "offer.category", "printable"),
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "s; percent=90"\nredirect = "/"\n',
         "offer.category", "';'"),
        (RULE + '[offer]\ncode = "X1"\npercent = 10\ncategory = "Sneakers"\nredirect = "/"\n',
         "offer.category", "lower case"),
        (RULE + "[caps]\nper_session = 0\n", "caps.per_session", "1..100"),
        # conditions the evaluator would treat as false on every page: refused, not silently dead
        (RULE.replace('"cart.items" = 0', '"$or" = 0'), "when.$or", "list of conditions"),
        (RULE.replace('"cart.items" = 0', '"utm.source" = { "$regex" = "a{4294967296}" }'),
         "when.utm.source.$regex", "not a regular expression"),
        (RULE.replace('"cart.items" = 0', '"utm.source" = { "$regexi" = "(" }'),
         "when.utm.source.$regexi", "not a regular expression"),
        (RULE.replace('"cart.items" = 0', '"cart.value" = { "$ne" = nan }'), "when.cart.value.$ne", "nan"),
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


def test_unknown_attributes_get_a_hint_and_a_line() -> None:
    text = RULE.replace('"cart.items" = 0', '"cart.items" = 0\n"categroy.sneakers.views" = { "$gte" = 3 }')
    with pytest.raises(RuleError) as err:
        load_ruleset({"pages.toml": PAGES, "bad.toml": text})
    assert err.value.message == "unknown attribute `categroy.sneakers.views`: did you mean `category.sneakers.views`?"
    assert err.value.line == text.splitlines().index('"categroy.sneakers.views" = { "$gte" = 3 }') + 1
    assert str(err.value).startswith(f"bad.toml:{err.value.line}: when.categroy.sneakers.views:")


@pytest.mark.parametrize(
    "condition",
    [
        '"visitor.recency" = "dormant"',
        '"$or" = [{ "cart.items" = 0 }, { "visitor.buyer" = "repeat" }]',
        '"products.recent" = { "$elemMatch" = { "$eq" = "a" } }',
        '"category.boots" = { "$exists" = true }',
    ],
)
def test_known_attribute_paths_pass(condition: str) -> None:
    load_ruleset({"pages.toml": PAGES, "ok.toml": RULE.replace('"cart.items" = 0', condition)})


def test_errors_point_at_their_line() -> None:
    text = RULE.replace('kind = "modal"', 'kind = "popup"')
    with pytest.raises(RuleError) as err:
        load_ruleset({"pages.toml": PAGES, "bad.toml": text})
    assert err.value.line == text.splitlines().index('kind = "popup"') + 1
    with pytest.raises(RuleError) as err:
        load_ruleset({"pages.toml": PAGES, "bad.toml": 'id = "x"\n\ntrigger = [\n'})
    assert err.value.line is not None and err.value.field == "-"


def test_every_file_names_the_line_of_its_error() -> None:
    """Issue 16: a shop owner fixes a guess from the message alone: file, line and field everywhere."""
    from nudge.rules.toml_fields import locate

    pages = PAGES + '\n[[page]]\ntype = "landing"\npattern = "/x"\n'
    with pytest.raises(RuleError) as err:
        load_ruleset({"pages.toml": pages})
    last_page = pages.count("[[page]]") - 1
    assert err.value.field == f"page[{last_page}].type" and err.value.line == len(pages.splitlines()) - 1
    with pytest.raises(RuleError) as err:
        load_ruleset({"pages.toml": PAGES, "bad.toml": 'bogus = 1\n' + RULE})
    assert str(err.value).startswith("bad.toml:1: bogus: unknown field")
    catalog = "[[product]]\nid = 'a'\nname = 'A'\nurl = '/a'\ncategory = 'x'\n\n[[product]]\nid = 'b'\nurl = 7\n"
    assert locate(catalog, "product[1].url") == 9  # the second entry's url, not the first's
    assert locate(catalog, "product[1]") == 7 and locate(catalog, "product[1].name") == 7  # unwritten: its header
    assert locate("[offer]\ncode = 'X'\n[caps]\ncode = 1\n", "caps.code") == 4


def test_attribute_paths_match_what_the_worker_builds() -> None:
    from nudge.visitor.attributes import ATTRIBUTE_PATHS, visitor_attributes
    from nudge.visitor.pages import Page
    from nudge.visitor.session import Session
    from nudge.visitor.tracking import record_page_view

    s = Session.fresh(1_790_000_000, b"visitor1")
    record_page_view(s, Page("product", "x", "y"), 1_790_000_000)
    attrs = visitor_attributes(s, Page("home"), None, 1_790_000_000)

    def leaves(node: object, prefix: str) -> list[str]:
        if isinstance(node, dict) and node:
            return [p for k, v in node.items() for p in leaves(v, f"{prefix}.{k}" if prefix else k)]
        return [prefix]

    built = {".".join("*" if (i == 1 and p.split(".")[0] in ("category", "product")) else seg
                      for i, seg in enumerate(p.split("."))) for p in leaves(attrs, "")}
    assert built == set(ATTRIBUTE_PATHS)


OFFER = '[offer]\ncode = "X1"\npercent = 10\ncategory = "sneakers"\nredirect = "/collections/sneakers"\n'


def site(shop: str) -> str:
    return f'[shop]\ncurrency = "USD"\n{shop}\n'


def test_offers_are_applied_by_code_unless_the_site_or_the_offer_says() -> None:
    plain = load_ruleset({"pages.toml": PAGES, "r.toml": RULE + OFFER})
    assert plain.settings.offer_apply == "code" and plain.settings.offer_header == "confirmed"
    rule = plain.rule("r1")
    assert rule is not None and rule.offer is not None and rule.offer.apply is None
    shopify = load_ruleset({"pages.toml": PAGES, "r.toml": RULE + OFFER + 'apply = "header"\n',
                            "site.toml": site('offer_apply = "url"\n'
                                              'offer_apply_url = "/discount/{code}?redirect={redirect}"\n'
                                              'offer_header = "honoured"')})
    rule = shopify.rule("r1")
    assert rule is not None and rule.offer is not None and rule.offer.apply == "header"
    assert (shopify.settings.offer_apply, shopify.settings.offer_header) == ("url", "honoured")
    assert shopify.settings.offer_apply_url == "/discount/{code}?redirect={redirect}"


@pytest.mark.parametrize("files, where, message", [
    ({"r.toml": RULE + OFFER + 'apply = "voucher"\n'}, "r.toml:14: offer.apply", "'code', 'url', 'header'"),
    ({"r.toml": RULE + OFFER + 'apply = "url"\n'}, "r.toml:14: offer.apply",
     "needs [shop] offer_apply_url in site.toml"),
    ({"site.toml": site('offer_apply = "url"')}, "site.toml:3: shop.offer_apply_url", "required when offer_apply"),
    ({"site.toml": site('offer_apply = "coupon"')}, "site.toml:3: shop.offer_apply", "'code', 'url', 'header'"),
    ({"site.toml": site('offer_header = "yes"')}, "site.toml:3: shop.offer_header", "'confirmed', 'honoured'"),
    ({"site.toml": site('offer_apply_url = "https://evil.example/{code}"')}, "site.toml:3: shop.offer_apply_url",
     "same-site path"),
    ({"site.toml": site('offer_apply_url = "/discount/SNEAKERS10"')}, "site.toml:3: shop.offer_apply_url",
     "must contain {code}"),
])
def test_apply_settings_are_checked_with_file_and_field(files: dict[str, str], where: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        load_ruleset({"pages.toml": PAGES, **files})
    assert str(caught.value).startswith(f"{where}: ") and message in str(caught.value)
