"""`python -m nudge`: the developer command line (see nudge.cli)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":  # the core test suite imports every module: never run on import
    sys.exit(main())
