"""Weight of the client script nudge injects: as served (gzip) and minified with esbuild (gzip).
Budget: 3 KB gzipped.

    .venv/bin/python bench/client_size.py
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 3 * 1024


def main() -> int:
    source = (ROOT / "client" / "nudge.js").read_bytes()
    served = len(gzip.compress(source, 9))
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    minified = subprocess.run([str(esbuild), "--minify", "--loader=js"], input=source,
                              capture_output=True, check=True).stdout
    shipped = len(gzip.compress(minified, 9))
    print(f"client/nudge.js as written: {len(source)} bytes, gzip {served} bytes")
    print(f"as served (minified by the build with esbuild): {len(minified)} bytes, gzip {shipped} bytes "
          f"(budget {BUDGET})")
    return 0 if shipped <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
