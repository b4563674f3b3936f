"""fail_open: nudge's own failure is logged and the caller goes on (failures.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nudge.failures import fail_open


def test_a_failing_step_is_logged_with_its_traceback_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    with fail_open("rewriting failed; left as is") as step:
        raise ValueError("boom")
    assert step.failed
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.getMessage() == "nudge: rewriting failed; left as is"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


def test_an_expected_failure_is_one_line_at_its_level_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with fail_open("budget of r not refreshed", expected=True, level=logging.WARNING) as step:
        raise LookupError("no binding")
    assert step.failed
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "nudge: budget of r not refreshed: no binding"


def test_a_step_that_succeeds_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def answer() -> str:
        with fail_open("never"):
            return "page"
        return "fallback"

    assert answer() == "page" and not caplog.records


def test_the_caller_goes_on_with_what_it_had() -> None:
    def answer() -> str:
        with fail_open("personalizing failed"):
            raise RuntimeError("bug")
        return "the origin's page"

    assert answer() == "the origin's page"


def test_cancellation_and_exit_are_not_swallowed() -> None:
    with pytest.raises(asyncio.CancelledError), fail_open("x"):
        raise asyncio.CancelledError
    with pytest.raises(KeyboardInterrupt), fail_open("x"):
        raise KeyboardInterrupt
