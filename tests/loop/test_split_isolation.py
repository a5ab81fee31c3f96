"""Dev and hidden (held-out, sealed) tasks never share a warm agent container or a judge worker,
so a channel nobody has found could still not carry a hidden task into dev feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sandboxes import require_backend

from rsi_bench.agents.pool import SolvePool
from rsi_bench.judge import Judge
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop

pytestmark = pytest.mark.docker


def container(sandbox: Any) -> str:
    return str(sandbox.container.id)


def test_dev_and_hidden_tasks_never_share_a_sandbox(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend("docker")
    pools: dict[str, set[str]] = {}  # split -> the warm containers that solved it
    judges: dict[str, set[str]] = {}  # split -> the judge workers' containers that judged it
    splits: dict[str, str] = {}
    solve, judge_many = SolvePool.solve, Judge.judge_many

    def recording_solve(self: SolvePool, view: Any, sample: int = 0) -> Any:
        outcome = solve(self, view, sample)
        pools.setdefault(splits[view.id], set()).update(
            container(w.attached.sandbox) for w in self._workers if w.attached.sandbox)
        return outcome

    def recording_judge(self: Judge, jobs: Any, on_result: Any = None) -> Any:
        jobs = list(jobs)
        verdicts = judge_many(self, jobs, on_result)
        for job in jobs:
            judges.setdefault(splits[job.task.id], set()).update(
                container(w.sandbox) for w in self._workers if w.sandbox)
        return verdicts

    monkeypatch.setattr(SolvePool, "solve", recording_solve)
    monkeypatch.setattr(Judge, "judge_many", recording_judge)
    loop = Loop(RunConfig(model="simulated", limit=8, generations=0, sealed=0.25,
                          concurrency=1, solve_timeout=30), tmp_path / "run")
    splits.update(loop.splits)
    try:
        loop.run()
    finally:
        loop.close()
    assert set(pools) == set(judges) == {"dev", "heldout", "sealed"}
    hidden_pools = pools["heldout"] | pools["sealed"]
    hidden_judges = judges["heldout"] | judges["sealed"]
    assert pools["dev"] and hidden_pools and not pools["dev"] & hidden_pools
    assert judges["dev"] and hidden_judges and not judges["dev"] & hidden_judges
