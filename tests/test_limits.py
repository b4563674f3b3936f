"""The size limits the developers' guide sets, checked: no module in src/ or tools/ over 400 lines, no
function over 60.

A data literal aside: the lines of a dict, list, tuple or set display that a function returns (a
table of attributes, say) do not count against the function, since splitting a table of data
scatters it without making anything simpler. What is counted is everything else the function says.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
GENERATED = {ROOT / "src" / "nudge" / "_bundle.py"}  # scripts/build_bundle.py writes it
MODULES = sorted(p for d in ("src", "tools") for p in (ROOT / d).rglob("*.py") if p not in GENERATED)
LITERALS = (ast.Dict, ast.List, ast.Tuple, ast.Set)


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The function's lines, less those of the data literal it returns (if it ends with one)."""
    lines = (node.end_lineno or node.lineno) - node.lineno + 1
    last = node.body[-1]
    if isinstance(last, ast.Return) and isinstance(last.value, LITERALS):
        lines -= (last.end_lineno or last.lineno) - last.lineno  # the `return {` line itself still counts
    return lines


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{node.name} (line {node.lineno}): {function_lines(node)} lines"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and function_lines(node) > MAX_FUNCTION_LINES]


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name(path)}: {lines} lines (split it by concern)"


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_functions_are_at_most_60_lines(path: Path) -> None:
    assert not long_functions(path), f"{name(path)}: {long_functions(path)}"


def test_a_returned_data_literal_is_not_counted_but_everything_else_is() -> None:
    table = ast.parse("def f():\n    x = 1\n    return {\n" + "        'k': 1,\n" * 80 + "    }\n").body[0]
    logic = ast.parse("def g():\n" + "    x = 1\n" * 80 + "    return [x]\n").body[0]
    assert isinstance(table, ast.FunctionDef) and isinstance(logic, ast.FunctionDef)
    assert function_lines(table) == 3  # def, x = 1, return {
    assert function_lines(logic) == 82
    assert MODULES and ROOT / "tools" / "nudge_tools" / "cli.py" in MODULES
