"""No silent skips in CI: when the `CI` environment variable is set, a skipped test fails unless
its reason names a declared optional component. Registered by tests/conftest.py."""

from __future__ import annotations

import os
import re

import pytest

# The parts of the project a machine may lack while everything else must run. A skip's reason
# has to name one of them (the pattern is searched in the reason, case-insensitively).
OPTIONAL_COMPONENTS = {
    "GPU": r"\bGPUs?\b|\bCUDA\b",
    "the llama.cpp server": r"llama[-_. ]?cpp",
}


def ci_enabled(environ=os.environ) -> bool:
    """CI systems set CI=true (GitHub, GitLab, ...); `.ci/run` sets it too."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def optional_component(reason: str) -> str | None:
    """The declared optional component a skip reason names, if any."""
    for name, pattern in OPTIONAL_COMPONENTS.items():
        if re.search(pattern, reason, flags=re.IGNORECASE):
            return name
    return None


def skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and ci_enabled()) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if optional_component(reason) is None:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI, but the reason names no declared optional component "
            f"({', '.join(OPTIONAL_COMPONENTS)}): {reason}"
        )
