"""A test whose prerequisite is missing skips on a developer's machine and fails under CI=true.

`missing(reason)` is what a fixture or test calls when a binary or file it needs is absent. The
hook below is the net under it: under CI=true (`.ci/run`) any skip, from `missing` or from a
`pytest.skip` written later, is reported as a failure, so CI can never go green on tests that
did not run.
"""

import os
from collections.abc import Generator
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(reason: str) -> NoReturn:
    if under_ci():
        pytest.fail(f"{reason} (CI=true, so this test may not be skipped)")
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"
    return report
