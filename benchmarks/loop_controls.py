"""The loop's controls on the simulated model, whose ground truth is known.

Runs the loop on ``rsi-core`` with the simulated model for G generations and S loop seeds, once
with the ``noop`` improver (identical copies: every difference between generations is sampling
noise) and once with ``self`` (the agent's own ``improve``, which the simulated model answers
with edits from a fixed library: helpful, neutral, harmful and cheating ones). Then prints, per
seed:

- noop: the trend of the held-out score over generations (OLS slope, its p-value). Only noise is
  expected: no systematic slope across seeds.
- self: the held-out score of generation 0, of the generation the loop selects (best dev score,
  ties to the earliest; never chosen on held-out) and of the last generation, and which
  scaffold features (the simulated model's helpful edits) the selected agent carries.

The true effects, in pass probability per task, are the simulated model's defaults
(``rsi_bench.models.simulated``): examples +0.10, self_check +0.05, retry_feedback +0.10,
plan +0.05, clamped to [p_min, p_max].

Run directories are kept (``--out``), so re-running resumes and only prints.

    python benchmarks/loop_controls.py [--generations 10] [--seeds 1 2 3] [--out runs/controls]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop
from rsi_bench.stats import trend_test


def run(config: RunConfig, run_dir: Path) -> Loop:
    def progress(kind: str, info: dict[str, Any]) -> None:
        if kind == "evaluate" and info["todo"]:
            print(f"  {run_dir.name}: generation {info['generation']}", file=sys.stderr,
                  flush=True)

    loop = Loop(config, run_dir, progress)
    try:
        loop.run()
    except BaseException:
        loop.close()
        raise
    return loop


def heldout(loop: Loop) -> dict[int, float]:
    return {row.generation: row.scores["heldout"] for row in loop.table()
            if row.status == "evaluated" and "heldout" in row.scores}


def features(agent_dir: Path) -> list[str]:
    """The simulated model's scaffold features present in an agent's prompts."""
    from rsi_bench.models.simulated import FEATURE_MARKERS

    text = "\n".join(p.read_text(errors="replace") for p in sorted(agent_dir.rglob("*"))
                     if p.is_file() and p.suffix in (".md", ".txt", ".py"))
    return [name for name, marker in FEATURE_MARKERS.items() if marker.search(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--limit", type=int, default=None, help="first N tasks of rsi-core")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/controls"))
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    start = time.monotonic()
    report: dict[str, Any] = {"generations": args.generations, "seeds": args.seeds}
    print(f"simulated model, rsi-core{f' (first {args.limit})' if args.limit else ''}, "
          f"{args.generations} generations, seeds {args.seeds}\n")
    print("noop (control): held-out score over generations")
    print("seed  slope/gen  p      scores")
    for seed in args.seeds:
        config = RunConfig(model="simulated", improver="noop", generations=args.generations,
                           seed=seed, limit=args.limit, concurrency=args.concurrency)
        loop = run(config, args.out / f"noop-s{seed}")
        scores = heldout(loop)
        loop.close()
        gens = sorted(scores)
        trend = trend_test(gens, [scores[g] for g in gens])
        report[f"noop-s{seed}"] = {"scores": scores, "slope": trend.slope, "p": trend.p_value}
        print(f"{seed:<5} {trend.slope:+.4f}    {trend.p_value:.3f}  "
              + " ".join(f"{scores[g]:.2f}" for g in gens))

    print("\nself (helpful edits available): held-out score")
    print("seed  g0     selected (gen)  last   selected agent's features")
    better = 0
    for seed in args.seeds:
        config = RunConfig(model="simulated", improver="self", generations=args.generations,
                           seed=seed, limit=args.limit, concurrency=args.concurrency)
        loop = run(config, args.out / f"self-s{seed}")
        scores = heldout(loop)
        chosen = loop.selected()
        rows = loop.table()
        invalid = sum(r.status == "invalid" for r in rows)
        feats = features(loop.lineage.path(chosen))
        loop.close()
        last = max(scores)
        better += scores[chosen] > scores[0]
        report[f"self-s{seed}"] = {"scores": scores, "selected": chosen, "invalid": invalid,
                                   "features": feats}
        print(f"{seed:<5} {scores[0]:.3f}  {scores[chosen]:.3f} ({chosen:>2})      "
              f"{scores[last]:.3f}  {', '.join(feats) or '-'}  [{invalid} invalid children]")
    print(f"\nself: selected generation beats generation 0 on held-out in {better}/"
          f"{len(args.seeds)} seeds")
    print(f"total {time.monotonic() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
