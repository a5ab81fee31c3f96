"""`sandbox doctor` says what its network probe found: a connection that succeeded, one that
was refused for want of a network, and a probe that did not run at all are three answers."""

from __future__ import annotations

from typing import Any

import pytest

from rsi_bench.sandbox import admin
from rsi_bench.sandbox.base import ExecResult


class _Backend:
    def __init__(self, probe: ExecResult) -> None:
        self.probe = probe

    def check(self) -> None:
        return None

    def create(self, spec: Any) -> Any:
        probe = self.probe

        class _Sandbox:
            def exec(self, cmd: list[str], **_kwargs: Any) -> ExecResult:
                return probe

            def close(self) -> None:
                return None

            def describe(self) -> dict[str, str]:
                return {}

        return _Sandbox()


def _doctor(monkeypatch: pytest.MonkeyPatch, exit_code: int, stderr: bytes) -> admin.Check:
    probe = ExecResult(exit_code=exit_code, stdout=b"60000\n", stderr=stderr)
    monkeypatch.setattr(admin, "get_backend", lambda name: _Backend(probe))
    return admin._check("docker")


def test_a_probe_that_connects_is_a_sandbox_on_the_network(
        monkeypatch: pytest.MonkeyPatch) -> None:
    check = _doctor(monkeypatch, 0, b"")
    assert not check.ok and check.detail == "the sandbox reached the network"


def test_an_unreachable_network_is_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    check = _doctor(monkeypatch, 1, b"OSError: [Errno 101] Network is unreachable\n")
    assert check.ok and "no network" in check.detail


def test_a_probe_that_could_not_run_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    check = _doctor(monkeypatch, 126, b"exec failed: permission denied\n")
    assert not check.ok
    assert check.detail == ("the network probe failed to run (exit 126): "
                            "exec failed: permission denied")
