"""`python -m nudge_tools` (= `nudge`): the developer command line (see nudge_tools.cli)."""

from __future__ import annotations

import sys

from nudge_tools.cli import main

if __name__ == "__main__":  # the core test suite imports every module: never run on import
    sys.exit(main())
