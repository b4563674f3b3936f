"""Fuzzing rule files: whatever a marketer (or a bad merge) writes into a rule's fields, loading
raises RuleError or gives a rule whose values are safe where they go: no CR/LF or `;` can reach
the `X-Nudge-Offer` header or a `Location`, and every URL stays on the shop."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nudge.offers import Redeemed
from nudge.rules.load import RuleError, load_ruleset
from nudge.visitor.pages import same_site_path

from ..core.factories import NOW, repo_rule_files
from .profile import fuzz
from .strategies import TEXT

PAGES_TOML = repo_rule_files()["pages.toml"]


def toml_string(value: str) -> str:
    """A TOML basic string (control characters escaped, as TOML requires)."""
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(value)


def toml(rule: dict[str, Any]) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in rule.items() if not isinstance(v, dict)]
    for table, fields in ((k, v) for k, v in rule.items() if isinstance(v, dict)):
        lines.append(f"[{table}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def plausible(good: str, strategy: st.SearchStrategy[Any] = TEXT) -> st.SearchStrategy[Any]:
    """Mostly a valid value (so loading gets past it), sometimes anything."""
    return st.just(good) | strategy


HOSTILE_PATHS = st.sampled_from(["/x\r\nSet-Cookie: a=b", "/x%0d%0aSet-Cookie:a=b", "//evil.example", "/\\evil.example",
                                 "https://evil.example/", "/ok", "/a b", "/%2F%2Fevil.example", "javascript:alert(1)"])
RULES = st.fixed_dictionaries({
    "id": plausible("r-1"),
    "pages": plausible(["product"], st.lists(TEXT | HOSTILE_PATHS, max_size=2)),
    "action": st.fixed_dictionaries({
        "kind": plausible("modal", st.sampled_from(["banner", "slot", "badge", "x"])),
        "title": TEXT, "body": TEXT, "button": TEXT,
    }, optional={"url": HOSTILE_PATHS | TEXT, "slot": TEXT, "dismiss": TEXT}),
}, optional={
    "offer": st.fixed_dictionaries({
        "code": plausible("SAVE10", TEXT), "percent": plausible(10, st.integers(-5, 200)),
        "category": TEXT | st.sampled_from(["sneakers", "running shoes", "a\r\nX-Evil: 1", "a; percent=90", "x=y"]),
        "redirect": HOSTILE_PATHS | TEXT,
    }, optional={"timezone": TEXT}),
    "description": TEXT,
})


@fuzz(RULES)
def test_rule_fields(rule: dict[str, Any]) -> None:
    try:
        loaded = load_ruleset({"pages.toml": PAGES_TOML, "r.toml": toml(rule)})
    except RuleError as exc:
        assert str(exc).startswith("r.toml")
        return
    (r,) = loaded.rules
    for url in (r.action.url, *r.url_globs, *(a.url for _, a in r.variants)):
        assert url == "" or same_site_path(url)
    if r.offer is not None:
        assert same_site_path(r.offer.redirect)
        header = Redeemed(r.id, r.offer.code, r.offer.percent, r.offer.category, NOW).header_value()
        assert not any(c in header for c in "\r\n\x00")
        fields = dict(part.split("=", 1) for part in header.split("; "))
        assert fields == {"code": r.offer.code, "percent": str(r.offer.percent), "category": r.offer.category,
                          "expires": str(NOW)}
