"""Prints how many cases each fuzz target ran (and how long it took) at the end of the session."""

from __future__ import annotations

import pytest

from .profile import CASES, NAME

_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "tests/fuzz/" in report.nodeid:
        name = report.nodeid.rsplit("::", 1)[-1].removeprefix("test_")
        _SECONDS[name] = _SECONDS.get(name, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = {name: n for name, n in CASES.items() if n or name in _SECONDS}
    if not ran:
        return
    terminalreporter.section(f"fuzz: cases run per target (profile {NAME})")
    for name, n in sorted(ran.items()):
        terminalreporter.write_line(f"{n:>9,}  {_SECONDS.get(name, 0.0):8.1f} s  {name}")
    terminalreporter.write_line(f"{sum(ran.values()):>9,}  {sum(_SECONDS.values()):8.1f} s  total")
