"""The Pyodide bundle builder (scripts/pyodide/build.py): every rewrite applied, a Pyodide it does not
know refused loudly, and a message workerd's schema reads back."""

from __future__ import annotations

import json
from pathlib import Path

import capnp  # type: ignore[import-untyped]
import pytest

from scripts.pyodide import build

# The targets of each rewrite, as they appear in pyodide.asm.mjs (one line each).
ASM = "\n".join([
    "async function _createPyodideModule(moduleArg={}){var x=new WebAssembly.Module(b);",
    "await WebAssembly.instantiate(b,i);var t=Date.now();crypto.getRandomValues(view);",
    "ASM_CONSTS[s]=eval(func);exports[n]=eval(func);eval(UTF8ToString(ptr));",
    "return eval(UTF8ToString(ptr))|0;var s=eval(UTF8ToString(ptr));eval(data);",
    "function loadLibData(){return 1}var m=getMemory(size);obj.eval(1);my_eval(2)",
    "}export default _createPyodideModule;",
])


def test_every_rewrite_is_applied_and_the_wrappers_are_imported() -> None:
    out = build.rewrite_asm(ASM)
    assert out.startswith(build.PRELUDE)
    for _old, new, _ in build.REWRITES:
        assert new in out
    body = out[len(build.PRELUDE):]
    for gone in ("new WebAssembly.Module", "WebAssembly.instantiate", "Date.now", "crypto.getRandomValues("):
        assert gone not in body
    assert "export { _createPyodideModule }" in out
    assert "patchedLoadLibData(Module,libName,flags.rpath)" in out
    assert "obj.eval(1)" in out and "my_eval(2)" in out  # methods and other names are left alone


@pytest.mark.parametrize("target", [old for old, _, _ in build.REWRITES])
def test_a_missing_target_fails_the_build(target: str) -> None:
    with pytest.raises(build.BuildError, match="expected"):
        build.rewrite_asm(ASM.replace(target, "/*gone*/"))


def test_a_direct_eval_no_rewrite_covers_fails_the_build() -> None:
    with pytest.raises(build.BuildError, match="eval"):
        build.rewrite_asm(ASM + "\nvar r=eval(code);")


def test_only_pyodide_314_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"version": "0.29.5"}))
    with pytest.raises(build.BuildError, match="314"):
        build.pyodide_version(tmp_path)


def test_the_message_reads_back_as_three_internal_modules(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"version": "314.0.6"}))
    (tmp_path / "pyodide.asm.mjs").write_text(ASM)
    (tmp_path / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "python_stdlib.zip").write_bytes(b"PK\5\6" + bytes(18))
    target = build.build(tmp_path, tmp_path / "out")
    assert target.name == "pyodide_dev.capnp.bin"
    schema = capnp.load(str(Path(build.__file__).with_name("bundle.capnp")))
    with schema.Bundle.from_bytes(target.read_bytes()) as bundle:
        modules = {m.name: m for m in bundle.modules}
        assert set(modules) == {f"pyodideRuntime-internal:{n}"
                                for n in ("pyodide.asm", "pyodide.asm.wasm", "python_stdlib.zip")}
        assert all(m.type == "internal" for m in modules.values())
        asm = modules["pyodideRuntime-internal:pyodide.asm"]
        assert asm.which() == "src" and bytes(asm.src).decode().startswith(build.PRELUDE)
        assert bytes(modules["pyodideRuntime-internal:pyodide.asm.wasm"].wasm) == b"\0asm\1\0\0\0"
        assert modules["pyodideRuntime-internal:python_stdlib.zip"].which() == "data"
    written = target.stat().st_mtime_ns
    build.build(tmp_path, tmp_path / "out")  # unchanged bytes are not written again
    assert target.stat().st_mtime_ns == written
