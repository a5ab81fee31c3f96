"""The sandbox protocol: what every backend (docker, bubblewrap, local) provides.

A sandbox is one isolated environment. ``exec`` runs a command to completion under a host-enforced
wall clock; ``stream`` starts a long-lived process and hands back its stdin/stdout as file
descriptors (the judge runner and agent containers use it). Every backend applies the same
``Limits``; the conformance suite in tests/sandbox checks that they hold.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Protocol

LABEL = "rsi-bench"  # every container we create carries this label; cleanup touches nothing else
SANDBOX_UID = 60000  # ad-hoc sandboxes; judge workers and agent containers lease theirs (uids.py)


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048  # whole sandbox (cgroup where the backend has one)
    job_memory_mb: int = 1024  # one solution process (RLIMIT_AS)
    pids: int = 256
    cpus: float = 1.0
    work_mb: int = 256  # tmpfs work dir
    output_bytes: int = 1 << 20  # captured per exec; the rest is counted and dropped


@dataclass(frozen=True)
class SandboxSpec:
    image: str = ""
    limits: Limits = field(default_factory=Limits)
    run_label: str = "adhoc"
    uid: int = SANDBOX_UID
    env: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, str] = field(default_factory=dict)  # host path -> sandbox path (read-only)
    # ``image`` is a task's own environment image (a SWE-bench instance image), not the judge
    # image: it carries no runner (the judge mounts one) and is only checked to exist. Docker only.
    environment: bool = False


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when killed for the timeout
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    duration_s: float = 0.0
    truncated: bool = False


class Stream(Protocol):
    """A running process inside a sandbox: write to ``stdin_fd``, read from ``stdout_fd``."""

    stdin_fd: int
    stdout_fd: int

    def stderr_tail(self) -> bytes: ...

    def close(self) -> None: ...


class Sandbox(Protocol):
    backend: str
    spec: SandboxSpec
    runner_path: str  # where the judge runner is, as seen from inside
    work_root: str  # the writable work directory
    scratch: tuple[str, ...]  # every writable place a job could leave files in
    pid_namespace: bool  # True when killing all of a uid's processes reaches only this sandbox

    def exec(
        self,
        cmd: list[str],
        *,
        input: bytes | None = None,
        timeout: float = 30.0,
        user: int | None = None,
        cwd: str = "/scratch",
        env: dict[str, str] | None = None,
    ) -> ExecResult: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def read_file(self, path: str) -> bytes: ...

    def stream(self, cmd: list[str], *, user: int = 0) -> Stream: ...

    def describe(self) -> dict[str, str]:
        """What a result should record about where it ran (backend, image digest...)."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str

    def check(self) -> None:
        """Raise SandboxUnavailable with a one-line reason if this backend cannot run here."""
        ...

    def create(self, spec: SandboxSpec) -> Sandbox: ...


class CappedBuffer:
    """Keeps the first ``limit`` bytes written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit, self.total = limit, 0
        self._chunks: list[bytes] = []
        self._kept = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.total += len(data)
            room = self.limit - self._kept
            if room > 0:
                piece = data[:room]
                self._chunks.append(piece)
                self._kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def getvalue(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)


def drain(fd: int, sink: CappedBuffer) -> None:
    """Read ``fd`` to EOF into ``sink`` (run in a thread)."""
    try:
        while chunk := os.read(fd, 1 << 16):
            sink.write(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
