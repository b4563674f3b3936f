"""`python -m demo_shop [--host H] [--port P]`: serve the shop with uvicorn.

uvicorn's own log (including `Uvicorn running on http://HOST:PORT`, the ready line the test
helpers wait for) and its access log are kept on purpose.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo_shop", description="Run the nudge demo shop.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8788, help="port to listen on (default 8788)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    uvicorn.run("demo_shop.app:app", host=args.host, port=args.port, access_log=True, log_level="info")


if __name__ == "__main__":
    main()
