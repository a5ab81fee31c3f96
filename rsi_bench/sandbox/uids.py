"""Host-wide leases of the uids untrusted code runs as.

Judge workers and agent containers draw from separate ranges, and every sandbox that is alive
holds its own uid: two sandboxes never share one, across roles, within a process or between
two rsi-bench processes on one host. Kernel state keyed by uid (the user keyring where a
sandbox can reach it, per-uid process limits) therefore never joins two sandboxes. A lease is
an exclusive ``flock`` on a file named after the uid; the kernel releases it when its holder
exits, however that happens, so a killed run leaves nothing to clean.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from rsi_bench.errors import SandboxUnavailable

UID_RANGES = {"judge": range(61000, 62000), "agent": range(62000, 63000)}


def lock_dir() -> Path:
    """Where the leases live (``RSI_BENCH_UID_LOCKS`` overrides; it must be on this host)."""
    path = Path(os.environ.get("RSI_BENCH_UID_LOCKS")
                or Path(tempfile.gettempdir()) / "rsi-bench-uids")
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o1777)  # every user that runs rsi-bench shares the one set of leases
    return path


def first_free(folder: Path, names: range, mode: int = 0o644) -> tuple[int, int] | None:
    """The first of ``names`` whose lock file in ``folder`` no live process holds, and the
    descriptor that now holds it (the kernel drops the lock when its holder dies)."""
    for name in names:
        fd = os.open(folder / f"{name}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return name, fd
    return None


class UidLease:
    """One uid, held until ``release()`` (or until this process exits)."""

    def __init__(self, role: str) -> None:
        if role not in UID_RANGES:
            raise ValueError(f"unknown sandbox role {role!r}")
        held = first_free(lock_dir(), UID_RANGES[role])
        if held is not None:
            self.uid, self._fd = held
            return
        raise SandboxUnavailable(f"every {role} uid ({UID_RANGES[role].start}-"
                                 f"{UID_RANGES[role].stop - 1}) is leased: too many sandboxes "
                                 "are running on this host")

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> UidLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
