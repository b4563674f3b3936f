"""Builds the Pyodide bundle workerd needs to run nudge offline, from npm's `pyodide` package.

workerd downloads its Pyodide bundle at start unless a file of the expected name already sits in
the directory given by `--pyodide-bundle-disk-cache-dir`; offline the download fails. With the
`python_workers_development` compatibility flag it asks for `pyodide_dev.capnp.bin`, the one bundle
it does not check against hashes compiled into the binary, so we build that one ourselves:

- `pyodide.asm.mjs`, rewritten so workerd's own Emscripten setup can link it (the rewrites below);
- `pyodide.asm.wasm` and `python_stdlib.zip`, unchanged.

The three go into one Cap'n Proto message (`bundle.capnp` beside this file). Local development
only: production runs Cloudflare's released bundle. Usage:

    python scripts/pyodide/build.py [--pyodide node_modules/pyodide] [--out build/pyodide]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import capnp  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUNDLE_NAME = "pyodide_dev.capnp.bin"
# The major version workerd's development bundle is built from (Pyodide 314 = Python 3.14).
PYODIDE_MAJOR = "314"
MODULE_PREFIX = "pyodideRuntime-internal:"

# workerd links pyodide.asm against these, and only these, names (linking fails on any other).
WRAPPERS = (
    "addEventListener",
    "getRandomValues",
    "location",
    "monotonicDateNow",
    "newWasmModule",
    "patchedApplyFunc",
    "patchedLoadLibData",
    "wasmInstantiate",
    "patched_PyEM_CountFuncParams",
)
PRELUDE = "import { " + ", ".join(WRAPPERS) + ' } from "pyodide-internal:builtin_wrappers";\n'
NO_EVAL = "(() => { throw new Error('pyodide tried to eval code, which Workers forbid'); })()"

# (what, with what, how often at least). Each is a fact of how workerd runs Emscripten: code may not
# compile wasm or eval on its own, time must move monotonically, entropy and dynamic libraries come
# from the runtime (so memory snapshots stay valid). A missing target means a Pyodide we never saw:
# the build fails loudly instead of producing a bundle that breaks at the first request.
REWRITES: tuple[tuple[str, str, int], ...] = (
    ("export default _createPyodideModule;",
     "export default _createPyodideModule; export { _createPyodideModule };", 1),
    ("new WebAssembly.Module", "newWasmModule", 1),
    ("WebAssembly.instantiate", "wasmInstantiate", 1),
    ("Date.now", "monotonicDateNow", 1),
    ("crypto.getRandomValues(", "getRandomValues(Module, ", 1),
    ("eval(func)", NO_EVAL, 2),
    ("eval(UTF8ToString(ptr))", NO_EVAL, 3),
    ("eval(data)", NO_EVAL, 1),
    ("function loadLibData(){",
     "function loadLibData(){var libData=patchedLoadLibData(Module,libName,flags.rpath);"
     "return flags.loadAsync?Promise.resolve(libData):libData}function unusedLoadLibData(){", 1),
    ("getMemory(", "Module.getMemoryPatched(Module, libName, ", 1),
)


class BuildError(Exception):
    """The npm package is not what this builder knows how to rewrite."""


def rewrite_asm(source: str) -> str:
    """pyodide.asm.mjs as workerd links it: the prelude's imports, then each rewrite applied."""
    for old, new, at_least in REWRITES:
        found = source.count(old)
        if found < at_least:
            raise BuildError(f"pyodide.asm.mjs: expected {old!r} at least {at_least} time(s), found {found}")
        source = source.replace(old, new)
    if _has_direct_eval(source):
        raise BuildError("pyodide.asm.mjs: an eval( call is left that no rewrite covers")
    return PRELUDE + source


def _has_direct_eval(source: str) -> bool:
    """Whether a bare `eval(` call remains (names such as `_eval(` or `.eval(` do not count)."""
    at = source.find("eval(")
    while at != -1:
        before = source[at - 1] if at else " "
        if not (before.isalnum() or before in "_$."):
            return True
        at = source.find("eval(", at + 1)
    return False


def pyodide_version(package: Path) -> str:
    meta = json.loads((package / "package.json").read_text(encoding="utf-8"))
    version = str(meta.get("version", ""))
    if version.split(".")[0] != PYODIDE_MAJOR:
        raise BuildError(f"{package}: pyodide {version}, but workerd's development bundle is Pyodide {PYODIDE_MAJOR}.x")
    return version


def encode(package: Path) -> bytes:
    """The bundle message: the rewritten loader, the wasm and the stdlib, all internal modules."""
    schema = capnp.load(str(HERE / "bundle.capnp"))
    asm = rewrite_asm((package / "pyodide.asm.mjs").read_text(encoding="utf-8"))
    bundle = schema.Bundle.new_message()
    modules = bundle.init("modules", 3)
    parts = (
        ("pyodide.asm", "src", asm.encode("utf-8")),
        ("pyodide.asm.wasm", "wasm", (package / "pyodide.asm.wasm").read_bytes()),
        ("python_stdlib.zip", "data", (package / "python_stdlib.zip").read_bytes()),
    )
    for module, (name, kind, content) in zip(modules, parts, strict=True):
        module.name = MODULE_PREFIX + name
        module.type = "internal"
        setattr(module, kind, content)
    return bytes(bundle.to_bytes())


def build(package: Path, out_dir: Path) -> Path:
    """Writes the bundle (only when its bytes changed) and returns its path."""
    version = pyodide_version(package)
    message = encode(package)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / BUNDLE_NAME
    if not target.exists() or target.read_bytes() != message:
        target.write_bytes(message)
    print(f"pyodide {version} bundle for workerd: {target} ({len(message) / 1e6:.1f} MB)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyodide", type=Path, default=ROOT / "node_modules" / "pyodide")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "pyodide")
    args = parser.parse_args(argv)
    try:
        build(args.pyodide, args.out)
    except (BuildError, OSError) as exc:
        print(f"pyodide bundle: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
