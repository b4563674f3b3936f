"""Message templates: `{{ cart.free_shipping_left | money }}` in a rule's text, filled from the
visitor's attributes and HTML-escaped on the way out.

A deliberately tiny language (a placeholder is an attribute path and at most one filter; no
expressions, no loops), checked when rules load: marketers write copy, not code, and a message
whose value is missing is not shown at all rather than shown with a hole in it. Jinja2 would run in
Pyodide, but it would add to every cold start for nothing the copy needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from nudge.visitor.attributes import closest_attribute, leaf_attribute

FILTERS = ("money", "number", "upper", "lower")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_PATH = re.compile(r"^[a-z_][a-z0-9_-]*(\.[a-z0-9_-]+)*$", re.I)
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "CHF": "CHF "}


class TemplateError(ValueError):
    """A placeholder that cannot work (unknown attribute or filter, unbalanced braces)."""


class MissingValue(LookupError):
    """The visitor has no value for a placeholder (e.g. no free-shipping threshold): skip the message."""


@dataclass(frozen=True)
class Template:
    """Literal text and placeholders, alternating: parts[0], (path, filter), parts[1], ..."""

    text: str
    literals: tuple[str, ...]
    fields: tuple[tuple[str, str | None], ...]

    def render(self, attributes: dict[str, Any], currency: str = "USD") -> str:
        """The escaped HTML of this text for one visitor; raises MissingValue."""
        if not self.fields:
            return escape(self.text)
        out = [escape(self.literals[0])]
        for (path, filt), literal in zip(self.fields, self.literals[1:], strict=True):
            out.append(escape(_format(_lookup(attributes, path), filt, currency)))
            out.append(escape(literal))
        return "".join(out)


def compile_template(text: str) -> Template:
    """Parses and checks a text; raises TemplateError naming the bad placeholder."""
    literals: list[str] = []
    fields: list[tuple[str, str | None]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        literals.append(text[pos:match.start()])
        fields.append(_field(match.group(1)))
        pos = match.end()
    rest = text[pos:]
    if "{{" in rest or "}}" in rest or any("{{" in lit or "}}" in lit for lit in literals):
        raise TemplateError("unbalanced '{{' or '}}' (write placeholders as {{ cart.value | money }})")
    literals.append(rest)
    return Template(text, tuple(literals), tuple(fields))


def _field(inner: str) -> tuple[str, str | None]:
    path, _, filt = (p.strip() for p in inner.partition("|"))
    if not _PATH.match(path):
        raise TemplateError(f"{{{{{inner}}}}}: expected an attribute path like cart.value")
    if not leaf_attribute(path):
        guess = closest_attribute(path)
        raise TemplateError(f"unknown attribute `{path}`" + (f": did you mean `{guess}`?" if guess else ""))
    if filt and filt not in FILTERS:
        raise TemplateError(f"unknown filter `{filt}`; one of {', '.join(FILTERS)}")
    return path, filt or None


def _lookup(attributes: dict[str, Any], path: str) -> Any:
    value: Any = attributes
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise MissingValue(path)
        value = value[part]
    if value is None or isinstance(value, (dict, list)):
        raise MissingValue(path)
    return value


def _format(value: Any, filt: str | None, currency: str) -> str:
    if filt in ("money", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MissingValue(f"not a number: {value!r}")
        if filt == "number":
            return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
        return money(float(value), currency)
    text = "yes" if value is True else "no" if value is False else str(value)
    return text.upper() if filt == "upper" else text.lower() if filt == "lower" else text


def money(value: float, currency: str = "USD") -> str:
    """"$12.50", "€1,299.00", "SEK 99.00": a symbol where one is unambiguous, else the code."""
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"
