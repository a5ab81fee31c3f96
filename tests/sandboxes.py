"""Which sandbox backends run here, for tests to require.

Outside CI a backend that cannot run here is skipped with its reason. When CI=true, docker and
bubblewrap are required: a missing daemon or image fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
from functools import cache

import pytest

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox import get_backend

IN_CI = os.environ.get("CI", "").lower() == "true"
REQUIRED_IN_CI = ("docker", "bubblewrap")


@cache
def unavailable(name: str) -> str | None:
    """None when the backend works here, else the reason it does not."""
    try:
        get_backend(name).check()
    except SandboxUnavailable as exc:
        return str(exc)
    return None


def require_backend(name: str) -> None:
    reason = unavailable(name)
    if reason is None:
        return
    if IN_CI and name in REQUIRED_IN_CI:
        pytest.fail(f"{name} sandbox is required in CI but unavailable: {reason}")
    pytest.skip(f"{name} sandbox unavailable: {reason}")


def _marks(name: str) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, name)] if name in ("docker", "bubblewrap") else []


ISOLATING = [pytest.param(n, marks=_marks(n), id=n) for n in ("docker", "bubblewrap")]
ALL_BACKENDS = ISOLATING + [pytest.param("local", id="local")]
