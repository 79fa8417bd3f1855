"""Starts the Parley processes once per test session and shows their logs when a
test fails. See parley_e2e.py for the helpers and README-like notes in run_e2e.py."""

from __future__ import annotations

import os

import pytest

import parley_e2e as e2e

_STACK: e2e.Stack | None = None
_NOTES: list[str] = []


def pytest_configure(config):
    missing = e2e.missing_env()
    if missing:
        raise pytest.UsageError(
            "the end-to-end suite needs these environment variables, which scripts/test.sh sets: "
            + ", ".join(missing)
        )


@pytest.fixture(scope="session")
def stack(request):
    global _STACK
    s = e2e.Stack()
    _STACK = s
    try:
        s.start()
    except BaseException:
        s.stop()
        _NOTES.append(f"the processes failed to start; their logs are kept in {s.tmp}")
        raise
    _NOTES.append(f"stack {s.prefix} (AMQP prefix) started in {s.startup_seconds:.1f} s")
    try:
        yield s
    finally:
        s.stop()
        _STACK = None
        if s.needed_sigkill:
            _NOTES.append(
                f"did not exit within {e2e.STOP_TIMEOUT:.0f} s of SIGTERM and were killed: " + ", ".join(s.needed_sigkill)
            )
        if request.session.testsfailed or s.needed_sigkill or os.environ.get("PARLEY_E2E_KEEP_LOGS") == "1":
            _NOTES.append(f"process logs kept in {s.tmp}")
        else:
            s.cleanup_tmp()


@pytest.fixture(autouse=True)
def _log_marks(request):
    """Remembers where the logs ended when a test started (see the hook below)."""
    if _STACK is not None:
        request.node._parley_log_marks = _STACK.log_marks()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACK is not None:
        marks = getattr(item, "_parley_log_marks", None)
        report.sections.append(("parley process logs", _STACK.log_tails(since=marks)))


def pytest_terminal_summary(terminalreporter):
    for note in _NOTES:
        terminalreporter.write_line(f"parley e2e: {note}")
