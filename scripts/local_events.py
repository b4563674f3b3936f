"""Passes the local runtime's output through and appends each Analytics Engine point the Worker
echoed (NUDGE_LOCAL_EVENTS=log) to a JSON-lines file, where `nudge report` reads local events.

workerd's local Analytics Engine binding records nothing, so `make dev` keeps its own copy.
Usage: wrangler dev ... 2>&1 | python scripts/local_events.py .nudge-local/analytics/nudge_events.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PREFIX = '{"nudge":"event",'


def main(target: Path) -> int:
    with target.open("a", encoding="utf-8") as out:
        for line in sys.stdin:
            at = line.find(PREFIX)
            if at == -1:
                sys.stdout.write(line)
                sys.stdout.flush()
                continue
            try:
                point = json.loads(line[at:])["point"]
            except (ValueError, KeyError, TypeError):
                sys.stdout.write(line)
                continue
            out.write(json.dumps(point, separators=(",", ":")) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
