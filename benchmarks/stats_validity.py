"""The verdict's error rates in simulated worlds, with more replications than the tests run.

For each world (rsi_bench.stats.validity) it prints, as fractions of R replications with a
Wilson 95% interval: "improved" with no true effect (target <= 0.05), "improved" with a true
effect equal to the world's MDE (target >= 0.80), and "improved" for the best-on-dev of G noop
generations judged on held-out (target <= 0.05), next to the same pick judged on dev (biased,
no target). Then the MDE table for common suite sizes and its computation time (target < 1 s
for n <= 200).

The MDE is the planner's (``rsi-bench plan`` without a pilot: equal task rates at the world's
base rate, the whole verdict rule simulated, power reached at its simulation's lower 95%
bound); ``--closed-form`` uses the verdict's closed-form MDE instead.

The power at the MDE is measured twice. With ``decide`` itself, R replications, as the other
columns; and, because the power promised in the equal-difficulty worlds sits only about a point
above 0.80, which R = 1,000 cannot resolve (its 95% interval is about +-0.025 wide), with the
whole rule simulated label for label (``rsi_bench.stats.rule_power``: the tests check that each
replication's label is decide's) over ``--power-replications`` (40,000: +-0.004), on
replications independent of the planner's. The power target is judged on the latter; where
power is exact (one seed, one sample, equal rates: McNemar's test alone) it is printed too.

Worlds: U-shaped task pass probabilities (like coding suites) with 82 and 20 held-out tasks,
1 and 3 seeds, which is what tests/stats asserts; the MDE's worst case (every task equally
hard), where the power sits just above 0.80 (the planner's margin is its own simulation error,
about 0.012 at 4,000 replications) rather than well above it; 5 samples per task; and a noise
floor of 10 points. Each rate comes with its Wilson 95% interval; a rate on the wrong side of
its target (for the whole rule's power: an interval reaching below 0.80) is listed at the end,
marked as noise when the target lies inside that interval.

    python benchmarks/stats_validity.py [--replications 1000] [--n-boot 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

import numpy as np

from rsi_bench.stats import minimum_detectable_effect, wilson_interval
from rsi_bench.stats.power import _mcnemar_power
from rsi_bench.stats.rule_power import rule_power_hits, simulated_mde
from rsi_bench.stats.validity import World, beta_rates, simulate_world, standard_worlds


def extra_worlds() -> list[tuple[World, float | None]]:
    flat82, flat20 = (0.5,) * 82, (0.5,) * 20
    u82 = beta_rates(82, seed=82), beta_rates(82, seed=1082)
    return [
        (World("flat n=82 seeds=1", flat82, flat82, 1), None),
        (World("flat n=82 seeds=3", flat82, flat82, 3), None),
        (World("flat n=20 seeds=3", flat20, flat20, 3), None),
        (World("u-shaped n=82 seeds=3 samples=5", *u82, 3, 5), None),
        (World("u-shaped n=82 seeds=3 floor=10pt", *u82, 3), 0.10),
    ]


def rate(value: float, replications: int) -> str:
    low, high = wilson_interval(value * replications, replications)
    return f"{value:6.3f} [{low:.3f}, {high:.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--power-replications", type=int, default=40_000,
                        help="replications of the whole rule's power at the MDE [40000]")
    parser.add_argument("--json", type=str, default=None)
    parser.add_argument("--closed-form", action="store_true",
                        help="the verdict's closed-form MDE instead of the planner's")
    args = parser.parse_args()

    worlds = [(w, None) for w in standard_worlds(args.seed)] + extra_worlds()
    print(f"R = {args.replications} replications per world, n_boot = {args.n_boot}, "
          f"G = {args.generations} noop generations, alpha = 0.05\n")
    header = (f"{'world':36s} {'base':>5s} {'MDE':>6s}  {'improved | no effect':>22s}  "
              f"{'improved | effect = MDE':>23s}  {'best-of-G noop, held-out':>24s}  "
              f"{'same, on dev':>22s}  {'s':>5s}  "
              f"{'improved | effect = MDE, whole rule':>35s}  {'exact':>6s}")
    print(header)
    print("-" * len(header))
    rows, started, misses = [], time.perf_counter(), []
    for index, (world, floor) in enumerate(worlds):
        # the planner's MDE: without a pilot it assumes equal rates at the world's base rate
        planned = None if args.closed_form else simulated_mde(
            np.full(world.n_tasks, world.base_rate), seeds=world.seeds, samples=world.samples,
            noise_floor=floor)
        row = simulate_world(world, replications=args.replications, seed=args.seed + index,
                             n_boot=args.n_boot, generations=args.generations,
                             noise_floor=floor, mde=planned)
        # the planner simulates with seed 0; these replications are independent of its own
        hits, big = rule_power_hits(np.asarray(world.heldout), row.mde, seeds=world.seeds,
                                    samples=world.samples, noise_floor=floor,
                                    replications=args.power_replications,
                                    seed=10_000 + args.seed + index)
        flat = len(set(world.heldout)) == 1
        exact = (_mcnemar_power(world.n_tasks, world.base_rate, row.mde, 0.05, floor or 0.0)
                 if flat and world.seeds == world.samples == 1 else None)
        rows.append({**asdict(row), "power_whole_rule": hits / big,
                     "power_replications": big, "exact_test_power": exact})
        r = args.replications
        print(f"{row.world:36s} {row.base_rate:5.3f} {100 * row.mde:5.1f}pt  "
              f"{rate(row.false_improved, r):>22s}  {rate(row.power_at_mde, r):>23s}  "
              f"{rate(row.selection_false_improved, r):>24s}  "
              f"{rate(row.selection_on_dev, r):>22s}  {row.seconds:5.1f}  "
              f"{rate(hits / big, big):>35s}  "
              f"{'' if exact is None else f'{exact:.4f}':>6s}", flush=True)
        for name, value, target, above, n in (
                ("false 'improved'", row.false_improved, 0.05, False, r),
                ("best-of-G false 'improved'", row.selection_false_improved, 0.05, False, r),
                ("power at the MDE (whole rule)", hits / big, 0.80, True, big)):
            low, high = wilson_interval(value * n, n)
            if (low < target) if above else (value > target):
                noise = " (target inside its 95% interval: noise)" if low <= target <= high else ""
                misses.append(f"{row.world}: {name} {value:.3f} [{low:.3f}, {high:.3f}] vs "
                              f"target {target}{noise}")
    print(f"\nsimulation: {time.perf_counter() - started:.1f} s")

    print("\nMDE (points) at alpha 0.05, power 0.80, base rate 0.5, one sample per task:")
    print(f"{'tasks':>6s} {'1 seed':>8s} {'3 seeds':>8s} {'5 seeds':>8s} {'slowest':>9s}")
    slowest = 0.0
    for n in (20, 40, 82, 164, 200):
        cells, times = [], []
        for seeds in (1, 3, 5):
            t0 = time.perf_counter()
            cells.append(minimum_detectable_effect(n, 0.5, seeds=seeds))
            times.append(time.perf_counter() - t0)
        slowest = max(slowest, *times)
        print(f"{n:6d} " + " ".join(f"{100 * c:8.1f}" for c in cells) + f" {max(times):8.3f}s")
    print(f"MDE time, slowest call for n <= 200: {slowest:.3f} s "
          f"({'PASS' if slowest < 1.0 else 'MISS'} target < 1 s)")
    print("\n" + ("all targets met" if not misses else "MISSES:\n  " + "\n  ".join(misses)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
