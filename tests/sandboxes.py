"""Which sandbox backends run here, for tests to require.

Outside CI a backend that cannot run here is skipped with its reason. When CI=true, docker (on
runc and on gVisor's runsc) and bubblewrap are required: a missing daemon, image or runtime
fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
from functools import cache

import pytest

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox import get_backend

IN_CI = os.environ.get("CI", "").lower() == "true"
REQUIRED_IN_CI = ("docker", "docker:runsc", "bubblewrap")


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
    """docker:runsc is a docker test too (it needs the daemon), and a runsc test."""
    marks = {"docker": ["docker"], "docker:runsc": ["docker", "runsc"],
             "bubblewrap": ["bubblewrap"]}.get(name, [])
    return [getattr(pytest.mark, m) for m in marks]


def backend_param(name: str) -> object:
    """A pytest param for a backend name, with its markers and a readable id."""
    return pytest.param(name, marks=_marks(name), id=name.replace(":", "-"))


ISOLATING = [backend_param(n) for n in ("docker", "docker:runsc", "bubblewrap")]
DOCKER_RUNTIMES = [backend_param(n) for n in ("docker", "docker:runsc")]
ALL_BACKENDS = ISOLATING + [pytest.param("local", id="local")]
