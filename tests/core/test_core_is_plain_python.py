"""The core must import and run in CPython with no Workers runtime: only nudge.runtime may touch JS."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import nudge

BOUNDARY = "nudge.runtime"
RUNTIME_MODULES = {"js", "pyodide", "workers"}
CORE = [m.name for m in pkgutil.walk_packages(nudge.__path__, "nudge.")
        if m.name != BOUNDARY and not m.name.startswith(BOUNDARY + ".")]


def test_core_modules_import_without_the_runtime() -> None:
    for name in CORE:
        importlib.import_module(name)
    assert not RUNTIME_MODULES & set(sys.modules)


def test_only_the_boundary_imports_runtime_modules() -> None:
    package = Path(nudge.__path__[0])
    boundary = sorted((package / "runtime").glob("*.py"))
    assert boundary, "the runtime package holds the boundary"
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in (n.names if isinstance(n, ast.Import) else [n])  # type: ignore[list-item]
        }
        if path.parent.name != "runtime":
            assert not RUNTIME_MODULES & imported, str(path.relative_to(package))


def test_the_build_step_needs_no_third_party_packages() -> None:
    """wrangler runs scripts/build_bundle.py with the deploy machine's python3: stdlib only."""
    import subprocess

    root = Path(nudge.__path__[0]).parents[1]
    code = "import sys; sys.modules['msgpack'] = None; sys.path.insert(0, 'src'); import runpy; " \
           "runpy.run_path('scripts/build_bundle.py', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bundled" in done.stdout
