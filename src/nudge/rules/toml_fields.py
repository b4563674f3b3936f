"""Reading a rule file's TOML: typed access to its tables, and `RuleError`, which names the file, the
line when it can be found, and the dotted field, so a marketer can fix a typo from the message.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from nudge.visitor.pages import same_site_path


class RuleError(ValueError):
    """An invalid rule file; the message names the file, the line when it can be found, and the field."""

    def __init__(self, file: str, field: str, message: str, line: int | None = None) -> None:
        super().__init__(f"{file}{f':{line}' if line else ''}: {field}: {message}")
        self.file, self.field, self.message, self.line = file, field, message, line

    def located(self, text: str) -> RuleError:
        """The same error with the line of the field in the file's text (best effort)."""
        line = self.line or locate(text, self.field)
        return RuleError(self.file, self.field, self.message, line)


def locate(text: str, field: str) -> int | None:
    """The line a dotted field is written on (best effort): its table's header (the Nth `[[name]]`
    for `name[N]`), then `key =` inside that table; a quoted key for condition fields."""
    lines = text.splitlines()
    steps = re.findall(r"([^.\[\]]+)(?:\[(\d+)\])?", field)
    if not steps or field == "-":
        return None
    if steps[0][0] == "when" and len(steps) > 1:  # condition keys are quoted dotted paths
        key = ".".join(name for name, _ in steps[1:] if not name.startswith("$")) or steps[-1][0]
        for i, line in enumerate(lines, 1):
            if f'"{key}"' in line or f"'{key}'" in line:
                return i
    start, table = _table_start(lines, [(name, int(n) if n else None) for name, n in steps[:-1]])
    last, index = steps[-1][0], steps[-1][1]
    if index:  # the field is itself an entry of an array of tables: its header
        _, entry = _table_start(lines, [(name, int(n) if n else None) for name, n in steps])
        return entry + 1 if entry is not None else None
    key = re.compile(rf"^\s*{re.escape(last)}\s*=")
    for i in range(start, len(lines)):
        if i > start and table is not None and _HEADER.match(lines[i]):
            break  # the next table: the key is not written in this one
        if key.match(lines[i]):
            return i + 1
    return table + 1 if table is not None else None


_HEADER = re.compile(r"^\s*\[")


def _table_start(lines: list[str], path: list[tuple[str, int | None]]) -> tuple[int, int | None]:
    """(where to look for keys, the header's line index) of a dotted table path, walking `[a.b]`
    and the Nth `[[a.b]]`; (0, None) at the top level or when a header is not written."""
    start, found, names = 0, None, []
    for name, index in path:
        names.append(name)
        dotted = re.escape(".".join(names))
        header = re.compile(rf"^\s*\[\[\s*{dotted}\s*\]\]" if index is not None else rf"^\s*\[\s*{dotted}\s*\]")
        seen = -1
        for i in range(start, len(lines)):
            if header.match(lines[i]):
                seen += 1
                if seen == (index or 0):
                    start, found = i, i
                    break
    return start, found


def parse_toml(name: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"line (\d+)", str(exc))
        line = int(at.group(1)) if at else max(1, len(text.splitlines()))  # "at end of document"
        raise RuleError(name, "-", f"not valid TOML: {exc}", line) from exc



class Fields:
    """Typed access to one TOML table, failing with the file and dotted field name."""

    def __init__(self, file: str, table: Any, prefix: str = "") -> None:
        if not isinstance(table, dict):
            raise RuleError(file, prefix.rstrip(".") or "-", "expected a table")
        self.file, self.table, self.prefix = file, table, prefix
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> RuleError:
        return RuleError(self.file, self.prefix + key, message)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "required")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(key, f"expected {names}, got {type(value).__name__}")
        return value

    def text(self, key: str, default: Any = ..., limit: int = 200) -> str:
        value: str = self.get(key, str, default)
        if len(value) > limit:
            raise self.fail(key, f"longer than {limit} characters")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown field")



def int_in(f: Fields, key: str, default: int | None, low: int, high: int) -> Any:
    value = f.get(key, int, default)
    if value is not None and not low <= value <= high:
        raise f.fail(key, f"expected {low}..{high}")
    return value


def percent(f: Fields, key: str, default: float, high: float) -> float:
    value = f.get(key, (int, float), default)
    if not 0 <= value <= high:
        raise f.fail(key, f"expected 0..{high:g} (percent)")
    return float(value)



def same_site_path_field(f: Fields, key: str, value: str) -> str:
    if not same_site_path(value):
        raise f.fail(key, "must be a same-site path starting with a single '/'")
    return value


def one_of(f: Fields, key: str, choices: tuple[str, ...], default: str | None) -> Any:
    value = f.get(key, str, default)
    if value is not None and value not in choices:
        raise f.fail(key, f"expected one of {', '.join(repr(c) for c in choices)}")
    return value
