"""How many threads and parallel slots the local model server gets on this machine.

``os.cpu_count()`` counts the host's CPUs, not the ones this process may use: a container or a
CI runner is often limited to fewer by its CPU affinity (``taskset``, cpusets) or by a cgroup
CPU quota (``docker run --cpus``). llama.cpp's worker threads spin while they wait for each
other, so one thread more than the CPUs it really gets makes every token slower, not faster.
The usable CPU count is therefore the smaller of the affinity set and the quota (rounded down,
at least one).

Slots: one by default, whatever the machine, because answers must not depend on load. llama.cpp
decodes every busy slot in one batch, and its results are not bit-for-bit the same for
different batch sizes (ggml-org/llama.cpp#7052, #6950): with two slots, a temperature-0 answer
can change with whichever other request happened to be decoded beside it, i.e. with timing.
With one slot, concurrent calls wait for it in order, and that wait is measured (``queue_s``).
``RSI_BENCH_LOCAL_SLOTS=auto`` (or ``parallel="auto"``) trades this for throughput: one slot per
usable CPU, at most ``MAX_SLOTS`` (a second concurrent request costs much less than a second
model on a CPU; each slot holds its own context in memory).

``RSI_BENCH_LOCAL_THREADS`` and ``RSI_BENCH_LOCAL_SLOTS`` (a number, or ``auto``) override the
defaults, as do the ``threads=`` and ``parallel=`` arguments of the local model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_SLOTS = 4
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class Sizing:
    cpus: float  # usable CPUs: min(affinity, cgroup quota)
    threads: int
    slots: int
    why: str  # where the CPU count came from, for logs and errors


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _quota(path: Path) -> float | None:
    """CPUs allowed by one cgroup directory (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``)."""
    try:
        if (path / "cpu.max").is_file():
            quota, _, period = (path / "cpu.max").read_text().strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or "100000")
        if (path / "cpu.cfs_quota_us").is_file():
            quota_us = int((path / "cpu.cfs_quota_us").read_text())
            if quota_us <= 0:  # -1: no limit
                return None
            return quota_us / int((path / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> Iterable[Path]:
    """The cgroup directories whose CPU limit applies to this process: its own and every
    ancestor, in the v2 hierarchy and in v1's cpu controller. Inside a container the mount
    is often the container's own cgroup while /proc/self/cgroup names the host's path, so
    the mount points themselves are always included."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    mounts = [root, root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"]
    yield from mounts
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, rel = fields
        if controllers == "":  # the v2 unified hierarchy: "0::/path"
            bases = [root]
        elif "cpu" in controllers.split(","):
            bases = mounts[1:]
        else:
            continue
        parts = [p for p in rel.strip("/").split("/") if p]
        for base in bases:
            for depth in range(1, len(parts) + 1):
                yield base.joinpath(*parts[:depth])


def quota_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota that applies to this process, in CPUs; None if unlimited."""
    found = [q for d in _cgroup_dirs(root, proc_cgroup) if (q := _quota(d)) is not None]
    return min(found) if found else None


def _env_int(name: str, value: str | None = None) -> int | None:
    value = (os.environ.get(name, "") if value is None else value).strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        from rsi_bench.models.base import LocalModelError

        raise LocalModelError(f"{name}={value!r}: expected a whole number of at least 1")
    return number


def size_for_machine(*, affinity: int | None = None, quota: float | None = None,
                     probe_quota: bool = True, threads: int | None = None,
                     slots: int | str | None = None) -> Sizing:
    """Threads and slots for this machine. ``affinity`` and ``quota`` stand in for the probes
    (tests pass them; ``probe_quota=False`` means "no quota"). ``slots``: a number, ``"auto"``
    (from the usable CPUs), or None (``RSI_BENCH_LOCAL_SLOTS``, else 1)."""
    allowed = affinity if affinity is not None else affinity_cpus()
    limit = quota if quota is not None else (quota_cpus() if probe_quota else None)
    cpus = float(allowed) if limit is None else min(float(allowed), limit)
    why = (f"{allowed} CPU(s) in this process's affinity"
           + ("" if limit is None else f", a cgroup quota of {limit:g} CPU(s)"))
    usable = max(1, math.floor(cpus))
    threads = threads or _env_int("RSI_BENCH_LOCAL_THREADS") or usable
    chosen = slots if slots is not None else os.environ.get("RSI_BENCH_LOCAL_SLOTS", "").strip()
    if chosen == "auto":
        count = min(usable, MAX_SLOTS)
    elif isinstance(chosen, int):
        count = chosen
    else:
        count = _env_int("RSI_BENCH_LOCAL_SLOTS", chosen) or 1
    if count < 1:
        from rsi_bench.models.base import LocalModelError

        raise LocalModelError(f"the local model needs at least one slot, not {count}")
    return Sizing(cpus=cpus, threads=threads, slots=count, why=why)
