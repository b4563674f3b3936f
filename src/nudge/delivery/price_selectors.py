"""Which elements of a page are prices nudge may show the visitor's discount on: those marked for
nudge (`data-nudge-price`, microdata `itemprop="price"`), and those the shop names in
`rules/site.toml` without touching its markup:

    [site]
    prices = [".price > .woocommerce-Price-amount",               # the price in the element's text
              { selector = ".product-card", attribute = "data-price" }]  # ... or in an attribute

The selectors go to HTMLRewriter, which throws on one it cannot parse, in the middle of a request;
so `nudge rules check` refuses them here. What passes is a subset every HTMLRewriter (lol-html)
takes: a type or `*`, `#id`, `.class`, `[attr]`, `[attr="value"]` (also `~=` `^=` `$=` `*=` `|=`, and
` i` / ` s`), `:first-child`, `:first-of-type`, `:nth-child(An+B)`, `:nth-of-type(An+B)` and
`:not(compound)`, joined by a space (descendant) or `>` (child). No `+` or `~`, no `:last-child`,
`:is()` or `:has()`, no pseudo-elements, namespaces, escapes, or lists (one selector per entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_PRICE_SELECTORS = 16
MAX_SELECTOR = 200


class PriceConfigError(ValueError):
    """`[site] prices` is not a list of selectors nudge can give HTMLRewriter."""


@dataclass(frozen=True)
class PriceSelector:
    """Elements showing a price: read from their text (price_text.py), or from an attribute."""

    selector: str
    attribute: str = ""  # "" reads the element's text


def offer_applies(offer_category: str, page_matches: bool, marked: str | None) -> bool:
    """Whether a price element shows the offer's discount: one marked `data-nudge-category` when
    that is the offer's category (on any page), an unmarked one on pages of the offer's category."""
    return marked == offer_category if marked is not None else page_matches


def scoped(selector: str, category: str) -> str:
    """`selector` narrowed to elements marked with `category`: on a page of another category only
    those can show the discount, and HTMLRewriter then calls nudge for no other element."""
    value = category.replace("\\", "\\\\").replace('"', '\\"')
    return f'{selector}[data-nudge-category="{value}"]'


def parse_price_selectors(entries: Any) -> tuple[PriceSelector, ...]:
    """`[site] prices`: selector strings, or `{selector, attribute}` tables; PriceConfigError says
    which entry is wrong and why."""
    if not isinstance(entries, list):
        raise PriceConfigError("expected a list of CSS selectors")
    if len(entries) > MAX_PRICE_SELECTORS:
        raise PriceConfigError(f"more than {MAX_PRICE_SELECTORS} selectors")
    return tuple(_entry(i, entry) for i, entry in enumerate(entries, 1))


_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


def _entry(number: int, entry: Any) -> PriceSelector:
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"selector", "attribute"})
        if unknown or not isinstance(entry.get("selector"), str):
            raise PriceConfigError(f"entry {number}: expected a selector, or {{ selector = \"...\", "
                                   f"attribute = \"...\" }}{f' (unknown field {unknown[0]!r})' if unknown else ''}")
        attribute = entry.get("attribute", "")  # absent: the text, as for a plain string
        if "attribute" in entry and not (isinstance(attribute, str) and _ATTRIBUTE_NAME.fullmatch(attribute)):
            raise PriceConfigError(f"entry {number}: attribute must be an attribute name like \"data-price\"")
        selector = entry["selector"]
    elif isinstance(entry, str):
        selector, attribute = entry, ""
    else:
        raise PriceConfigError(f"entry {number}: expected a CSS selector string")
    problem = "longer than 200 characters" if len(selector) > MAX_SELECTOR else selector_problem(selector)
    if problem:
        raise PriceConfigError(f"entry {number} ({selector!r}): {problem}")
    return PriceSelector(selector.strip(), attribute)


# -- the selector subset ------------------------------------------------------------------------------

_IDENT = r"(?:--|-?[^\W\d])[\w-]*"  # a CSS name: no leading digit; letters beyond ASCII are fine
_TYPE = re.compile(rf"\*|{_IDENT}")
_NAME = re.compile(rf"[#.]{_IDENT}")
_VALUE = rf"(?:{_IDENT}|\"[^\"\n]*\"|'[^'\n]*')"
_ATTRIBUTE = re.compile(rf"\[\s*{_IDENT}\s*(?:[~^$*|]?=\s*{_VALUE}\s*(?:[iIsS]\s*)?)?\]")
_PSEUDO = re.compile(rf":({_IDENT})(\()?")
_NTH = re.compile(r"\s*(?:(?i:odd|even)|[+-]?\d*n(?:\s*[+-]\s*\d+)?|[+-]?\d+)\s*\)")
_COMBINATOR = re.compile(r"\s*>\s*|\s+")
_SUPPORTED_PSEUDO = ":first-child, :first-of-type, :nth-child(), :nth-of-type() and :not()"


def selector_problem(selector: str) -> str | None:
    """Why HTMLRewriter would refuse `selector`, or nudge does not take it; None when it is fine."""
    text = selector.strip()
    if not text:
        return "empty: name the element that shows the price, e.g. \".price\""
    if "\\" in text:
        return "backslash escapes are not supported"
    pos = 0
    while True:
        pos, problem = _compound(text, pos, negated=False)
        if problem or pos == len(text):
            return problem
        combinator = _COMBINATOR.match(text, pos)
        if combinator is None:
            return _unexpected(text, pos)
        pos = combinator.end()
        if pos == len(text):
            return "ends with '>': name the element it leads to"


def _compound(text: str, pos: int, negated: bool) -> tuple[int, str | None]:
    """The end of the compound selector at `pos` (`div.price[data-x]:first-child`), or a problem."""
    start = pos
    if found := _TYPE.match(text, pos):
        pos = found.end()
    while pos < len(text) and text[pos] in "#.[:":
        if text[pos] == ":":
            pos, problem = _pseudo(text, pos, negated)
            if problem:
                return pos, problem
            continue
        found = (_ATTRIBUTE if text[pos] == "[" else _NAME).match(text, pos)
        if found is None:
            return pos, ('an attribute selector is [name] or [name="value"] (also ~= ^= $= *= |=)'
                         if text[pos] == "[" else f"{text[pos]!r} must be followed by a name (\".price\", \"#total\")")
        pos = found.end()
    return (pos, None) if pos > start else (pos, _unexpected(text, pos))


def _pseudo(text: str, pos: int, negated: bool) -> tuple[int, str | None]:
    if text.startswith("::", pos):
        return pos, "pseudo-elements (::before) are not supported"
    found = _PSEUDO.match(text, pos)
    if found is None:
        return pos, _unexpected(text, pos)
    name, called = found.group(1).lower(), bool(found.group(2))
    if name in ("first-child", "first-of-type") and not called:
        return found.end(), None
    if name in ("nth-child", "nth-of-type") and called:
        nth = _NTH.match(text, found.end())
        return (nth.end(), None) if nth else (pos, f":{name}() takes odd, even or An+B, like 2n+1")
    if name == "not" and called and not negated:
        if text.startswith(")", found.end()):
            return pos, ":not() needs a selector inside, like :not(.sold-out)"
        end, problem = _compound(text, found.end(), negated=True)
        if problem or not text.startswith(")", end):
            return pos, problem or ":not() takes one compound selector, like :not(.sold-out) (no spaces, '>' or ',')"
        return end + 1, None
    if name == "not" and negated:
        return pos, ":not() inside :not() is not supported"
    return pos, f":{found.group(1)} is not supported by HTMLRewriter (it takes {_SUPPORTED_PSEUDO})"


def _unexpected(text: str, pos: int) -> str:
    char = text[pos] if pos < len(text) else ""
    if char == ",":
        return "one selector per entry: write each as its own item of the list"
    if char in ("+", "~"):
        return f"HTMLRewriter takes only the descendant (space) and child (>) combinators, not {char!r}"
    if char == "|":
        return "namespaces are not supported"
    if char == ">":
        return "'>' must stand between two elements"
    return f"unexpected {char!r} at character {pos + 1}" if char else "unexpected end"
