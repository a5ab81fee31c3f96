"""The judge-protocol frame of a repo job (host side), and the host's wall clock for it."""

from __future__ import annotations

import json
from typing import Any

from rsi_bench.judge.io_job import wall_limit

SETUP_S = 60.0  # writing the repository, applying the diffs, and the wipe after the job


def repo_frame(job_id: str, task: Any, diff: str, memory_mb: int) -> tuple[dict[str, Any], float]:
    """The frame and the seconds after which the host gives up on the runner. The frame holds
    the hidden part (repository, test_patch, test ids); it stays in the runner, which hands the
    test process only the repository it wrote."""
    spec = json.loads(task.tests)
    cpu_s = float(spec.get("time_limit_s", 30.0))
    frame = {"op": "job", "kind": "repo", "id": job_id, "solution": diff, "spec": spec,
             "memory_mb": memory_mb, "cpu_s": max(1, round(cpu_s)), "wall_s": wall_limit(cpu_s)}
    return frame, wall_limit(cpu_s) + SETUP_S
