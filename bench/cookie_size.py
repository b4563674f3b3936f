"""Session cookie size: a typical 20-page visit (target <= 400 bytes), and 10,000 page views across
200 categories and 5,000 products with dwell, searches, cart churn and nudges (hard cap: 1,024
bytes; tests/core/test_session.py asserts both). Also the whole Set-Cookie header the browser
receives, and the cap over several random histories.

    .venv/bin/python bench/cookie_size.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "tools")]

from nudge.engine import SESSION_MAX_AGE  # noqa: E402
from nudge.signing import Signer  # noqa: E402
from nudge.visitor.cookies import set_cookie  # noqa: E402
from nudge.visitor.session import COOKIE_NAME, MAX_COOKIE_BYTES, SessionCodec  # noqa: E402
from nudge_tools.visits import heavy_history, typical_visit  # noqa: E402

SEEDS = (7, 11, 23, 42, 99)


def header(value: str) -> int:
    return len(set_cookie(COOKIE_NAME, value, max_age=SESSION_MAX_AGE, secure=True))


def main() -> int:
    codec = SessionCodec(Signer([b"bench-secret"], "session"))
    typical = codec.encode(typical_visit())
    heavy = {seed: heavy_history(random.Random(seed)) for seed in SEEDS}
    start = time.perf_counter()
    value = codec.encode(heavy[SEEDS[0]])
    encode_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for _ in range(1000):
        codec.decode(value)
    decode_us = (time.perf_counter() - start) * 1000
    sizes = [len(codec.encode(s)) for s in heavy.values()]
    print(f"typical 20-page visit: {len(typical)} bytes (target <= 400); Set-Cookie header {header(typical)} bytes")
    print(f"10,000 page views, 200 categories, 5,000 products: {len(value)} bytes (cap {MAX_COOKIE_BYTES}); "
          f"Set-Cookie header {header(value)} bytes")
    print(f"  over {len(SEEDS)} random histories: {min(sizes)}-{max(sizes)} bytes")
    print(f"encode of the heavy session (CPython, incl. shedding): {encode_ms:.2f} ms; decode: {decode_us:.1f} us")
    return 0 if len(typical) <= 400 and max(sizes) <= MAX_COOKIE_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
