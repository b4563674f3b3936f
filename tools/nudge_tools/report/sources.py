"""Where `nudge report`'s events come from: the local runtime's JSON lines or the Analytics Engine SQL
API (`--remote`); both become the same `Row`s and go through the same computation (lift.py).
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATASET = "nudge_events"
EVENTS_FILE = Path("analytics") / f"{DATASET}.jsonl"  # under the local runtime's --persist-to
SQL_API = "https://api.cloudflare.com/client/v4/accounts/{account}/analytics_engine/sql"
ACCOUNT_VAR, TOKEN_VAR = "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"
DAY = 86_400

Fetch = Callable[[str, Mapping[str, str], bytes], bytes]


class ReportError(Exception):
    """Events that cannot be read: no credentials, an unreachable API, a missing file."""


@dataclass(frozen=True)
class Row:
    """One event, from either source."""

    time: float  # Unix seconds
    kind: str  # exposure, impression, click, dismiss, conversion
    rule: str  # "" for a conversion
    variant: str  # "0", "1", ... ("" for a conversion)
    group: str  # treatment, holdout, shadow ("" for a conversion)
    visitor: str
    revenue: float = 0.0
    weight: float = 1.0  # events this row stands for (Analytics Engine's _sample_interval)


@dataclass(frozen=True)
class Events:
    rows: tuple[Row, ...]
    bad_rows: int  # lines or rows that could not be read (skipped)
    source: str
    note: str = ""  # e.g. the API said it returned only part of the rows



def _row(kind: Any, rule: Any, variant: Any, group: Any, visitor: Any, revenue: Any, time: float,
         weight: Any = 1) -> Row:
    """A Row from raw column values; ValueError (or TypeError) when one is unusable."""
    kind, rule, variant, group, visitor = ("" if t is None else t for t in (kind, rule, variant, group, visitor))
    if not all(isinstance(t, str) for t in (kind, rule, variant, group, visitor)) or not kind:
        raise ValueError("blobs must be strings")  # a null blob reads as ""
    w = float(weight)
    if not (math.isfinite(time) and math.isfinite(w) and w > 0):
        raise ValueError("bad time or sample interval")
    money = float(revenue or 0)
    return Row(time, kind, rule, variant, group, visitor, money if math.isfinite(money) else 0.0, w)


def parse_local_line(line: str) -> Row:
    """One line of `<persist-to>/analytics/nudge_events.jsonl`; ValueError when it is not an event."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    blobs, doubles = data.get("blobs"), data.get("doubles") or []
    if not isinstance(blobs, list) or len(blobs) < 5 or not isinstance(doubles, list):
        raise ValueError("blobs missing")
    written = float(doubles[1]) if len(doubles) > 1 and doubles[1] else float(data["timestamp"]) / 1000
    kind, rule, variant, group, visitor = blobs[:5]
    return _row(kind, rule, variant, group, visitor, doubles[0] if doubles else 0, written)


def load_local(path: Path, now: float, since_days: int) -> Events:
    """The events of the last `since_days` in the local runtime's JSON lines; unreadable lines are
    skipped and counted."""
    if not path.is_file():
        raise ReportError(f"{path}: no events yet (run the local edge and browse the shop, check "
                          f"--persist-to, or pass --remote)")
    rows: list[Row] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                row = parse_local_line(line)
            except (ValueError, TypeError, KeyError, IndexError):
                bad += 1
                continue
            if row.time >= now - since_days * DAY:
                rows.append(row)
    return Events(tuple(rows), bad, str(path))


def remote_credentials(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(account id, API token) from the environment; ReportError naming what is missing."""
    account, token = environ.get(ACCOUNT_VAR, "").strip(), environ.get(TOKEN_VAR, "").strip()
    missing = [name for name, value in ((ACCOUNT_VAR, account), (TOKEN_VAR, token)) if not value]
    if missing:
        raise ReportError(f"--remote needs {' and '.join(missing)} in the environment (an API token with "
                          f"Account Analytics: Read)")
    return account, token


def remote_query(since_days: int) -> str:
    return (f"SELECT timestamp, blob1, blob2, blob3, blob4, blob5, double1, double2, _sample_interval "
            f"FROM {DATASET} WHERE timestamp > NOW() - INTERVAL '{int(since_days)}' DAY FORMAT JSON")


def post(url: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """POST with urllib; ReportError with the API's answer on failure."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer: bytes = response.read()
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise ReportError(f"the Analytics Engine SQL API answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ReportError(f"cannot reach the Analytics Engine SQL API: {exc}") from exc


def _sql_time(row: Mapping[str, Any]) -> float:
    """When a SQL API row was written: double2 (Unix seconds), else its `timestamp` (UTC)."""
    if row.get("double2"):
        return float(row["double2"])
    stamp = datetime.fromisoformat(str(row["timestamp"]).replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def load_remote(account: str, token: str, since_days: int, fetch: Fetch = post) -> Events:
    """The events of the last `since_days` from the Analytics Engine SQL API."""
    url = SQL_API.format(account=account)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    answer = fetch(url, headers, remote_query(since_days).encode())
    try:
        data = json.loads(answer)
    except ValueError as exc:
        raise ReportError(f"the Analytics Engine SQL API answered something other than JSON: {answer[:200]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ReportError(f"unexpected answer from the Analytics Engine SQL API: {str(data)[:300]}")
    rows: list[Row] = []
    bad = 0
    for item in data["data"]:
        try:
            rows.append(_row(item["blob1"], item["blob2"], item["blob3"], item["blob4"], item["blob5"],
                             item.get("double1"), _sql_time(item), item.get("_sample_interval") or 1))
        except (ValueError, TypeError, KeyError):
            bad += 1
    total = data.get("rows_before_limit_at_least")
    note = ""
    if isinstance(total, (int, float)) and total > len(data["data"]):
        note = f"the API returned {len(data['data'])} of at least {int(total)} rows: try a shorter --since"
    return Events(tuple(rows), bad, f"Analytics Engine dataset {DATASET} (--remote)", note)
