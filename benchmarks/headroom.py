"""Headroom: the seed agent's pass@1 on each built-in suite with one model, and its wall time
per task. A suite leaves room for a loop to show an improvement only when generation 0 scores
well under 1; rsi-io and rsi-repo are meant to score well under rsi-core.

For each suite, one ``rsi-bench run --generations 0`` (generation 0 only: every task of the
suite, dev and held-out, solved once by the seed agent and judged), then from its store:

- pass@1 over all its tasks (one sample each), with a Wilson 95% interval, and the verdicts;
- wall time per task: the solve (agent and model time) plus the judging, median and mean, and
  the model's share of it.

    python benchmarks/headroom.py [--suites humaneval,rsi-core,rsi-io,rsi-repo] [--limit N]
        [--work DIR] [-- extra rsi-bench run options, e.g. --model simulated]

The default model is the run's default (``local/qwen2.5-coder-0.5b``, the embedded model).
Wall times depend on the machine and its load (the load average is printed with them); the
verdicts do not (see ``load_invariance.py``).
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_suite(suite: str, run_dir: Path, limit: int | None, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "rsi_bench.cli", "run", "--suite", suite, "--generations", "0",
           "--run-dir", str(run_dir), *(["--limit", str(limit)] if limit else []), *extra]
    print("$", " ".join(cmd[2:]), flush=True)
    start = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - start


def summarise(run_dir: Path) -> dict[str, Any]:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        rows = db.execute("SELECT status, solve_s, judge_s, model_s FROM results "
                          "WHERE generation = 0").fetchall()
    n, passed = len(rows), sum(r[0] == "pass" for r in rows)
    walls = [r[1] + r[2] for r in rows]
    model = sum(r[3] or 0.0 for r in rows)
    return {"n": n, "pass": passed, "ci": wilson(passed, n),
            "verdicts": dict(Counter(r[0] for r in rows).most_common()),
            "median_s": statistics.median(walls) if walls else 0.0,
            "mean_s": statistics.fmean(walls) if walls else 0.0,
            "model_share": model / sum(r[1] for r in rows) if rows and sum(
                r[1] for r in rows) else 0.0}


def main(argv: list[str]) -> int:
    ours, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # HumanEval first: the function suite the same agent and model are known to solve, the
    # reference the other suites' headroom is read against
    ap.add_argument("--suites", default="humaneval,rsi-core,rsi-io,rsi-repo")
    ap.add_argument("--limit", type=int, default=None, help="tasks per suite (default: all)")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(ours)
    work = args.work or Path(tempfile.mkdtemp(prefix="rsi-bench-headroom-"))
    rows = []
    for suite in args.suites.split(","):
        run_dir = work / suite
        if not (run_dir / "run.sqlite").exists():
            seconds = run_suite(suite, run_dir, args.limit, extra)
        else:
            seconds = float("nan")  # an earlier invocation's run: summarised as it is
        rows.append((suite, summarise(run_dir), seconds, os.getloadavg()[0]))
    print(f"\nruns in {work}")
    print(f"{'suite':10} {'pass@1':>14} {'95% CI':>13} {'median s/task':>14} {'mean s/task':>12} "
          f"{'model share':>12} {'run s':>7} {'load':>5}  verdicts")
    for suite, s, seconds, load in rows:
        lo, hi = s["ci"]
        verdicts = ", ".join(f"{k} {v}" for k, v in s["verdicts"].items())
        print(f"{suite:10} {s['pass']:>4}/{s['n']:<3} {s['pass'] / max(s['n'], 1):5.3f} "
              f"{lo:6.3f}-{hi:5.3f} {s['median_s']:14.1f} {s['mean_s']:12.1f} "
              f"{s['model_share']:12.2f} {seconds:7.0f} {load:5.1f}  {verdicts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
