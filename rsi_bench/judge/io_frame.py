"""The judge-protocol frame of an io job (host side), and the host's wall clock for it."""

from __future__ import annotations

import json
from typing import Any

from rsi_bench.judge.io_job import wall_limit

GENERATION_S = 120.0  # making generated tests and the reference's answers, in the runner


def io_frame(job_id: str, task: Any, solution: str) -> tuple[dict[str, Any], float]:
    """The frame and the seconds after which the host gives up on the runner.

    The reference crosses only when generated tests need its answers; it stays in the runner.
    """
    spec = json.loads(task.tests)
    tests = len(spec["cases"]) + len(spec["generated"])
    frame = {"op": "job", "kind": "io", "id": job_id, "solution": solution, "spec": spec,
             "reference": task.reference if spec["generated"] else "",
             "timeout": wall_limit(spec["time_limit_s"]), "memory_mb": spec["memory_mb"]}
    return frame, tests * (wall_limit(spec["time_limit_s"]) + 2.0) + GENERATION_S
