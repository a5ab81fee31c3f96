"""How long `rsi-bench report` takes on a full experiment: 3 conditions x 3 seeds x 20 generations
x 164 tasks of SYNTHETIC runs (known pass probabilities; no model, no containers).

Run: python benchmarks/report_render.py [--keep DIR] [--generations 20] [--tasks 164]
The target is a whole report (load, analysis, plots, write) in under 30 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rsi_bench.report import render
from rsi_bench.results.synthetic import write_run

TARGET_S = 30.0
CONDITIONS = ("self", "noop", "fixed")
SEEDS = (0, 1, 2)


def _write(args: tuple[Path, str, int, int, int]) -> Path:
    root, condition, seed, generations, tasks = args
    return write_run(root / condition / f"seed-{seed}", improver=condition, seed=seed,
                     generations=generations, tasks=tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=164)
    parser.add_argument("--keep", type=Path, help="write runs and report here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        started = time.perf_counter()
        jobs = [(root / "runs", c, s, args.generations, args.tasks)
                for c in CONDITIONS for s in SEEDS]
        with ProcessPoolExecutor(min(len(jobs), os.cpu_count() or 1)) as pool:
            runs = list(pool.map(_write, jobs))
        print(f"wrote {len(runs)} synthetic runs ({len(CONDITIONS)} conditions x {len(SEEDS)} "
              f"seeds x {args.generations} generations x {args.tasks} tasks) in "
              f"{time.perf_counter() - started:.1f} s (not timed below)")
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        paths = render(runs, root / "report", name="benchmark", timings=timings)
        total = time.perf_counter() - clock
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print("  ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    print(f"report: {total:.2f} s for {len(paths)} files; target < {TARGET_S:.0f} s: "
          f"{'PASS' if total < TARGET_S else 'MISS'} ({total / TARGET_S:.2f}x the target)")
    if args.keep:
        print(f"kept: {root / 'report' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
