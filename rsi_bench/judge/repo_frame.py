"""The judge-protocol frame of a repo job (host side), and the host's wall clock for it."""

from __future__ import annotations

import json
from typing import Any

from rsi_bench.judge.repo_job import WALL_S

SETUP_S = 60.0  # writing the repository, applying the diffs, and the wipe after the job


def repo_frame(job_id: str, task: Any, diff: str, memory_mb: int) -> tuple[dict[str, Any], float]:
    """The frame and the seconds after which the host gives up on the runner. The frame holds
    the hidden part (repository, test_patch, test ids); the runner keeps it out of the test
    process's reach until it has written the repository."""
    frame = {"op": "job", "kind": "repo", "id": job_id, "solution": diff,
             "spec": json.loads(task.tests), "memory_mb": memory_mb, "wall_s": WALL_S}
    return frame, WALL_S + SETUP_S
