"""Shared fixtures: which sandbox backends run here.

Outside CI a backend that cannot run here is skipped with its reason. When CI=true, docker (under
runc and gVisor's runsc) and bubblewrap are required: a missing daemon, image or runtime fails
the tests instead of skipping them.
"""

from __future__ import annotations

import pytest
from sandboxes import ALL_BACKENDS, ISOLATING, require_backend


@pytest.fixture(params=ISOLATING)
def isolating_backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests ran in each real sandbox, so a silent skip cannot pass unnoticed."""
    for marker in ("docker", "runsc", "bubblewrap"):
        counts: dict[str, int] = {}
        for outcome in ("passed", "failed", "skipped", "error"):
            for report in terminalreporter.stats.get(outcome, []):
                if marker in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                    if outcome == "passed" and report.when != "call":
                        continue
                    counts[outcome] = counts.get(outcome, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none collected"
        terminalreporter.write_line(f"{marker} sandbox tests: {summary}")
