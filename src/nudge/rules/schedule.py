"""When a rule may run: start/end dates, weekdays and hours in the rule's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Schedule:
    start: int | None = None  # Unix seconds, inclusive
    end: int | None = None  # Unix seconds, exclusive
    timezone: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(7))  # 0 = Monday
    hours: tuple[int, int] = (0, 24)  # local [from, to); from > to wraps midnight (22-6)


ALWAYS = Schedule()


@lru_cache(maxsize=64)
def zone(name: str) -> Any:
    """An IANA zone, or None when this runtime does not know it. Kept: building one reads the
    zone's data again each time (~0.15 ms in Pyodide), and rules name few zones."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except (ImportError, ValueError, KeyError, OSError):
        return None


def local_time(now: int, tz_name: str | None) -> datetime:
    """`now` as a wall-clock time in `tz_name`; UTC when the name is missing or unknown here."""
    return datetime.fromtimestamp(now, (zone(tz_name) if tz_name else None) or UTC)


def is_active(schedule: Schedule, now: int) -> bool:
    if schedule is ALWAYS or schedule == ALWAYS:
        return True
    if schedule.start is not None and now < schedule.start:
        return False
    if schedule.end is not None and now >= schedule.end:
        return False
    local = local_time(now, schedule.timezone)
    if local.weekday() not in schedule.weekdays:
        return False
    start, stop = schedule.hours
    if start <= stop:
        return start <= local.hour < stop
    return local.hour >= start or local.hour < stop
