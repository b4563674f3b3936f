"""Takes the baseline memory snapshot of Pyodide that scripts/workerd then gives every local start.

Without it workerd loads Pyodide and Python's standard library from scratch on each start of
`wrangler dev` (~6 s on an idle 2-core machine, 20 s+ when busy); with it, the start resumes from
memory, as Cloudflare's isolates do. A baseline snapshot holds Pyodide alone, none of nudge's
code, so it stays valid while src/ changes; it is rebuilt with the bundle.

    python scripts/pyodide/snapshot.py     (make does it after building the bundle)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import processes  # noqa: E402

TARGET = ROOT / "build" / "pyodide" / "snapshot" / "snapshot.bin"


def main() -> int:
    TARGET.unlink(missing_ok=True)
    os.environ["NUDGE_PYTHON_SNAPSHOT"] = "save"
    with tempfile.TemporaryDirectory() as state, \
            processes.local_edge("http://127.0.0.1:9", Path(state), "snapshot-" + "x" * 32) as (_, process):
        deadline = time.monotonic() + 120
        while not (TARGET.exists() and TARGET.stat().st_size > 0):
            if time.monotonic() > deadline:
                print(f"no snapshot written to {TARGET}:\n{process.output()}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        size = -1
        while size != TARGET.stat().st_size:  # written in one go, but wait until it stops growing
            size = TARGET.stat().st_size
            time.sleep(0.5)
    print(f"Pyodide baseline snapshot for workerd: {TARGET.relative_to(ROOT)} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
