"""Sizing the local model server: threads and slots from the CPUs this process may use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsi_bench.models.base import LocalModelError
from rsi_bench.models.local_sizing import (
    MAX_SLOTS,
    affinity_cpus,
    quota_cpus,
    size_for_machine,
)


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RSI_BENCH_LOCAL_THREADS", raising=False)
    monkeypatch.delenv("RSI_BENCH_LOCAL_SLOTS", raising=False)


@pytest.mark.parametrize(("affinity", "quota", "threads", "slots"), [
    (2, None, 2, 2),             # this machine
    (64, None, 64, MAX_SLOTS),   # a big host: slots capped, threads not
    (64, 2.0, 2, 2),             # docker run --cpus 2 on a big host
    (8, 1.5, 1, 1),              # a fractional quota rounds down: no throttled spinning
    (1, 0.25, 1, 1),             # never below one
    (3, 8.0, 3, 3),              # affinity tighter than the quota
])
def test_threads_and_auto_slots_follow_the_usable_cpus(affinity: int, quota: float | None,
                                                       threads: int, slots: int) -> None:
    sizing = size_for_machine(affinity=affinity, quota=quota, probe_quota=False, slots="auto")
    assert (sizing.threads, sizing.slots) == (threads, slots)
    assert f"{affinity} CPU(s)" in sizing.why


@pytest.mark.parametrize("affinity", [1, 2, 64])
def test_one_slot_by_default_so_answers_do_not_depend_on_what_runs_beside_them(
        affinity: int) -> None:
    assert size_for_machine(affinity=affinity, probe_quota=False).slots == 1


def test_explicit_values_and_env_vars_win(monkeypatch: pytest.MonkeyPatch) -> None:
    assert size_for_machine(affinity=8, probe_quota=False, threads=3, slots=1).threads == 3
    monkeypatch.setenv("RSI_BENCH_LOCAL_THREADS", "5")
    monkeypatch.setenv("RSI_BENCH_LOCAL_SLOTS", "2")
    sizing = size_for_machine(affinity=8, probe_quota=False)
    assert (sizing.threads, sizing.slots) == (5, 2)
    monkeypatch.setenv("RSI_BENCH_LOCAL_SLOTS", "auto")
    assert size_for_machine(affinity=3, probe_quota=False).slots == 3
    monkeypatch.setenv("RSI_BENCH_LOCAL_SLOTS", "zero")
    with pytest.raises(LocalModelError, match="RSI_BENCH_LOCAL_SLOTS='zero'"):
        size_for_machine(affinity=8, probe_quota=False)
    with pytest.raises(LocalModelError, match="at least one slot"):
        size_for_machine(affinity=8, probe_quota=False, slots=0)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_tightest_on_the_path(tmp_path: Path) -> None:
    root, proc = tmp_path / "cgroup", tmp_path / "self-cgroup"
    write(proc, "0::/ci/job\n")
    write(root / "cpu.max", "max 100000\n")
    assert quota_cpus(root, proc) is None  # control: no limit anywhere
    write(root / "ci" / "cpu.max", "300000 100000\n")
    write(root / "ci" / "job" / "cpu.max", "150000 100000\n")
    assert quota_cpus(root, proc) == 1.5
    write(root / "ci" / "cpu.max", "50000 100000\n")  # a parent's limit applies too
    assert quota_cpus(root, proc) == 0.5


def test_cgroup_v1_quota_inside_and_outside_a_container(tmp_path: Path) -> None:
    root, proc = tmp_path / "cgroup", tmp_path / "self-cgroup"
    write(proc, "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert quota_cpus(root, proc) is None  # control: -1 is no limit
    job = root / "cpu,cpuacct" / "docker" / "abc"
    write(job / "cpu.cfs_quota_us", "200000\n")
    write(job / "cpu.cfs_period_us", "100000\n")
    assert quota_cpus(root, proc) == 2.0
    # inside the container the mount is its own cgroup, though /proc names the host path
    inside = tmp_path / "inside"
    write(inside / "cpu" / "cpu.cfs_quota_us", "100000\n")
    write(inside / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert quota_cpus(inside, proc) == 1.0


def test_the_real_probes_see_a_narrowed_affinity() -> None:
    """Not faked: a child restricted to one CPU sizes the server for one."""
    assert affinity_cpus() == len(os.sched_getaffinity(0))
    cpu = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{cpu}}})\n"
            "from rsi_bench.models.local_sizing import size_for_machine\n"
            "s = size_for_machine(slots='auto'); print(s.threads, s.slots)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSI_BENCH_LOCAL_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    assert out == ["1", "1"]
