"""Starts the Parley processes once per test session and shows their logs when a
test fails. See parley_e2e.py for the helpers and README-like notes in run_e2e.py."""

from __future__ import annotations

import pytest

import parley_e2e as e2e

_STACK: e2e.Stack | None = None


def pytest_configure(config):
    missing = e2e.missing_env()
    if missing:
        raise pytest.UsageError(
            "the end-to-end suite needs these environment variables, which scripts/test.sh sets: "
            + ", ".join(missing)
        )


@pytest.fixture(scope="session")
def stack():
    global _STACK
    s = e2e.Stack()
    _STACK = s
    try:
        s.start()
    except BaseException:
        s.stop()
        raise
    try:
        yield s
    finally:
        s.stop()
        _STACK = None
        s.cleanup_tmp()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACK is not None:
        report.sections.append(("parley process logs (tails)", _STACK.log_tails()))
