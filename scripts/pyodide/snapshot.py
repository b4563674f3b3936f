"""Takes the baseline memory snapshot of Pyodide that scripts/workerd then gives every local start.

Without it workerd loads Pyodide and Python's standard library from scratch on each start of
`wrangler dev` (~6 s on an idle 2-core machine, 20 s+ when busy); with it, the start resumes from
memory, as Cloudflare's isolates do. The snapshot also holds the Worker's modules as imported when
it was taken (a start from it ran stale code once src/ had changed), so scripts/workerd keeps it
per hash of src/ and python_modules/ and starts without one when the code differs.

    python scripts/pyodide/snapshot.py     (make does it after building the bundle)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from nudge_tools import processes  # noqa: E402

SNAPSHOTS = ROOT / "build" / "pyodide" / "snapshot"


def code_hash() -> str:
    """The key scripts/workerd files the snapshot under: sha256 of every .py of the Worker's code, in
    path order (as `find src python_modules -name '*.py' | sort | xargs cat | sha256sum`)."""
    paths = sorted(str(p.relative_to(ROOT)) for d in ("src", "python_modules") for p in (ROOT / d).rglob("*.py"))
    digest = hashlib.sha256()
    for path in paths:
        digest.update((ROOT / path).read_bytes())
    return digest.hexdigest()[:16]


def main() -> int:
    target = SNAPSHOTS / code_hash() / "snapshot.bin"
    if target.is_file() and target.stat().st_size > 0:
        return 0  # this code's snapshot is there already
    if SNAPSHOTS.exists():
        shutil.rmtree(SNAPSHOTS)  # older code's snapshots
    os.environ["NUDGE_PYTHON_SNAPSHOT"] = "save"
    with tempfile.TemporaryDirectory() as state, \
            processes.local_edge("http://127.0.0.1:9", Path(state), "snapshot-" + "x" * 32) as (_, process):
        deadline = time.monotonic() + 120
        while not (target.exists() and target.stat().st_size > 0):
            if time.monotonic() > deadline:
                print(f"no snapshot written to {target}:\n{process.output()}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        size = -1
        while size != target.stat().st_size:  # written in one go, but wait until it stops growing
            size = target.stat().st_size
            time.sleep(0.5)
    print(f"Pyodide baseline snapshot for workerd: {target.relative_to(ROOT)} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
