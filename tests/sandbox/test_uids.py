"""Uids of untrusted code: judge workers and agent containers draw from separate ranges, and no
two live sandboxes share a uid, within one process or across two."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.judge import Job, Judge
from rsi_bench.sandbox import SANDBOX_UID, uids
from rsi_bench.sandbox.uids import UID_RANGES, UidLease
from rsi_bench.tasks.model import Task


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RSI_BENCH_UID_LOCKS", str(tmp_path / "locks"))
    return tmp_path / "locks"


def test_roles_never_overlap() -> None:
    judge, agent = set(UID_RANGES["judge"]), set(UID_RANGES["agent"])
    assert not judge & agent and SANDBOX_UID not in judge | agent and 0 not in judge | agent


def test_live_leases_are_distinct_and_released(locks: Path) -> None:
    held = [UidLease("judge") for _ in range(3)] + [UidLease("agent") for _ in range(2)]
    assert len({lease.uid for lease in held}) == 5
    assert all(lease.uid in UID_RANGES["judge"] for lease in held[:3])
    assert all(lease.uid in UID_RANGES["agent"] for lease in held[3:])
    first = held[0].uid
    held[0].release()
    assert UidLease("judge").uid == first  # a released uid is free again


def test_another_process_never_gets_a_leased_uid(locks: Path) -> None:
    code = ("from rsi_bench.sandbox.uids import UidLease; import sys\n"
            "lease = UidLease('judge'); print(lease.uid, flush=True); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        theirs = int(other.stdout.readline())
        mine = UidLease("judge")
        assert mine.uid != theirs
    finally:
        other.communicate("")
    assert UidLease("judge").uid == theirs  # their lease ended with their process


def test_an_exhausted_range_is_a_clear_error(locks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(uids.UID_RANGES, "judge", range(61000, 61002))
    _held = [UidLease("judge"), UidLease("judge")]
    with pytest.raises(SandboxUnavailable, match="every judge uid"):
        UidLease("judge")


# The solution raises its uid: a candidate's uncaught exception is the one text a verdict's
# detail carries (a failed assert's message never is).
WHOAMI = "import os\ndef probe():\n    raise RuntimeError(str(os.getuid()))\n"


def test_judge_workers_run_as_distinct_judge_uids(isolating_backend: str) -> None:
    task = Task(id="uid/whoami", entry_point="probe", reference=WHOAMI, prompt="",
                tests="def check(candidate):\n    candidate()\n")
    with Judge(isolating_backend, workers=2, timeout=20.0) as judge:
        seen = {int(v.detail.removeprefix("RuntimeError: ")) for v in judge.judge_many(
            [Job(task, WHOAMI, k) for k in range(6)])}
        configured = {w.attached.spec.uid for w in judge._workers}
    assert len(configured) == 2 and configured <= set(UID_RANGES["judge"])
    assert seen <= configured and seen  # the jobs ran as those uids
