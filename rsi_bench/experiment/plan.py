"""The power planner: what an experiment can detect, the smallest design that detects a target
gain at 80% power, and what it costs, before anything runs.

The MDE is the verdict rule's own (``rsi_bench.stats.rule_power``: test, interval and a noise
floor drawn from the experiment's ``noop`` seeds), for the claim split's task count, the loop
seeds and the samples. Per-task base rates come from a pilot run when given (generation 0's
pass fractions; with one sample per task the spread between tasks cannot be told from sampling
noise, so equal rates at the pilot's mean are used, the worst case), else equal rates at
``plan.base_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsi_bench.experiment.spec import ExperimentSpec, default_parallel_runs
from rsi_bench.stats import minimum_detectable_effect
from rsi_bench.stats.rule_power import REPLICATIONS, simulated_mde

SEED_CHOICES = tuple(range(1, 11))
SAMPLE_CHOICES = (1, 2, 3, 5, 10)


@dataclass(frozen=True)
class Pilot:
    rates: tuple[float, ...]  # generation 0's per-task pass fractions
    samples: int
    usd_per_call: float | None
    seconds_per_solve: float | None
    path: str


@dataclass(frozen=True)
class Design:
    seeds: int
    samples: int
    mde: float  # the whole rule's, by simulation


@dataclass(frozen=True)
class Plan:
    claim_split: str
    n_tasks: int  # on the claim split
    n_solved_tasks: int  # dev + held-out: solved every generation
    seeds: int
    samples: int
    base_rate: float
    rates_from: str
    mde: float  # whole rule, simulated, with the noop floor when there are noop seeds
    mde_no_floor: float  # whole rule, simulated, without a floor
    formula_mde: float  # the verdict's closed form (test only, no floor)
    controls: int  # noop seeds whose apparent gains set the floor
    target_effect: float
    smallest: Design | None
    calls: int
    usd: float | None
    hours: float | None
    parallel_runs: int

    def lines(self) -> list[str]:
        def pts(x: float) -> str:
            return "none reachable" if not math.isfinite(x) else f"{100 * x:.1f} points"

        floor = (f"a noise floor from {self.controls} noop seed(s)" if self.controls
                 else "no noop control, so no noise floor")
        out = [f"plan: {self.n_tasks} {self.claim_split} tasks, {self.seeds} seed(s), "
               f"{self.samples} sample(s) per task; base rate {self.base_rate:.2f} "
               f"({self.rates_from})",
               f"  minimum detectable effect at 80% power: {pts(self.mde)} (the whole verdict "
               f"rule by simulation, with {floor})",
               f"  without a noise floor: {pts(self.mde_no_floor)} by simulation; "
               f"{pts(self.formula_mde)} by the verdict's closed form (test only)"]
        if self.smallest is None:
            out.append(f"  a {pts(self.target_effect)} gain: no design up to "
                       f"{SEED_CHOICES[-1]} seeds x {SAMPLE_CHOICES[-1]} samples on these "
                       f"{self.n_tasks} tasks reaches it; more tasks are needed")
        else:
            s = self.smallest
            out.append(f"  smallest design detecting {pts(self.target_effect)}: {s.seeds} "
                       f"seed(s) x {s.samples} sample(s) (MDE {pts(s.mde)})")
        cost = "unknown (give plan.usd_per_call or --pilot)" if self.usd is None \
            else f"${self.usd:,.2f}"
        wall = ("unknown (give plan.seconds_per_solve or --pilot)" if self.hours is None
                else f"{self.hours:.2f} h at {self.parallel_runs} run(s) at once")
        out.append(f"  expected: {self.calls:,} model calls, cost {cost}, wall time {wall}")
        return out


def load_pilot(run_dir: Path) -> Pilot:
    from rsi_bench.results.load import load_run

    run = load_run(run_dir)
    first = run.results[run.results["generation"] == 0]
    per_task = first.groupby("task_id")["passed"].agg(["mean", "size"])
    calls = run.calls[~run.calls["cache_hit"] & run.calls["cost_usd"].notna()]
    usd = float(calls["cost_usd"].mean()) if len(calls) else None
    timed = run.results[["solve_s", "judge_s"]].dropna()
    seconds = float((timed["solve_s"] + timed["judge_s"]).mean()) if len(timed) else None
    return Pilot(tuple(float(x) for x in per_task["mean"]),
                 int(per_task["size"].min()) if len(per_task) else 1, usd, seconds,
                 str(run_dir))


def planned_rates(n_tasks: int, base_rate: float, pilot: Pilot | None) -> tuple[np.ndarray, str]:
    """Per-task base rates for ``n_tasks`` tasks, and where they come from."""
    if pilot is None or not pilot.rates:
        return np.full(n_tasks, base_rate), "assumed, equal difficulty (the worst case)"
    observed = np.asarray(pilot.rates)
    mean = float(observed.mean())
    k = pilot.samples
    spread = _between_task_correlation(observed, k)
    if spread <= 0.0:
        return np.full(n_tasks, mean), (f"pilot mean, equal difficulty ({k} sample(s) per "
                                        "task cannot show the spread between tasks)")
    # Beta rates whose beta-binomial matches the pilot's mean and spread (method of moments)
    total = 1.0 / spread - 1.0
    rng = np.random.default_rng(0)
    rates = np.sort(rng.beta(mean * total, (1 - mean) * total, size=(200, n_tasks)), axis=1)
    return rates.mean(axis=0), f"pilot, {len(observed)} tasks x {k} samples"


def _between_task_correlation(fractions: np.ndarray, k: int) -> float:
    """rho = 1 / (a + b + 1) of a beta-binomial with k draws per task; 0 if not identifiable."""
    mean = float(fractions.mean())
    if k < 2 or mean <= 0.0 or mean >= 1.0:
        return 0.0
    ratio = float(fractions.var(ddof=1)) * k / (mean * (1 - mean)) if fractions.size > 1 else 1
    return float(min(0.99, max(0.0, (ratio - 1.0) / (k - 1))))


def make_plan(spec: ExperimentSpec, *, n_tasks: int, n_solved_tasks: int, claim_split: str,
              pilot: Pilot | None = None, replications: int = REPLICATIONS) -> Plan:
    a = spec.plan
    base = spec.base
    controls = len(spec.seeds) if any(c.improver == "noop" for c in spec.conditions) else 0
    rates, source = planned_rates(n_tasks, a.base_rate, pilot)

    def mde(seeds: int, samples: int, floor: bool = True, reps: int = replications) -> float:
        return simulated_mde(rates, seeds=seeds, samples=samples, alpha=a.alpha, power=a.power,
                             replications=reps,
                             control_seeds=seeds if controls and floor else 0)

    planned = mde(len(spec.seeds), base.samples)
    no_floor = mde(len(spec.seeds), base.samples, floor=False) if controls else planned
    formula = minimum_detectable_effect(n_tasks, float(rates.mean()), alpha=a.alpha,
                                        power=a.power, seeds=len(spec.seeds),
                                        samples=base.samples)
    smallest = _smallest(rates, a.target_effect, a.alpha, a.power,
                         lambda s, k: mde(s, k, reps=max(200, replications // 4)))
    calls = _calls(spec, n_solved_tasks)
    usd_per_call = pilot.usd_per_call if pilot and pilot.usd_per_call is not None \
        else a.usd_per_call
    per_solve = pilot.seconds_per_solve if pilot and pilot.seconds_per_solve is not None \
        else a.seconds_per_solve
    parallel = a.parallel_runs or default_parallel_runs(base.concurrency)
    hours = None
    if per_solve is not None:
        runs = len(spec.conditions) * len(spec.seeds)
        solves_per_run = n_solved_tasks * base.samples * (base.generations + 1)
        waves = math.ceil(runs / parallel)
        hours = waves * solves_per_run * per_solve / base.concurrency / 3600.0
    return Plan(claim_split, n_tasks, n_solved_tasks, len(spec.seeds), base.samples,
                float(rates.mean()), source, planned, no_floor, formula, controls, a.target_effect,
                smallest, calls, None if usd_per_call is None else calls * usd_per_call,
                hours, parallel)


def _smallest(rates: np.ndarray, target: float, alpha: float, power: float,
              mde: object) -> Design | None:
    """The cheapest (fewest solves: seeds x samples) design whose simulated MDE <= target.

    The closed form screens: it is exact for one seed and one sample and conservative
    otherwise (the sign-flip test on pooled scores is more powerful than its normal
    approximation), so a design whose closed-form MDE exceeds the target by more than the
    simulation's margin cannot reach it and is not simulated. Without a floor, the first
    design that passes the screen is nearly always the answer."""
    n, mean = rates.size, float(rates.mean())
    for seeds, samples in sorted(((s, k) for s in SEED_CHOICES for k in SAMPLE_CHOICES),
                                 key=lambda d: (d[0] * d[1], d[0])):
        if minimum_detectable_effect(n, mean, alpha=alpha, power=power, seeds=seeds,
                                     samples=samples) > 1.1 * target:
            continue
        found = mde(seeds, samples)  # type: ignore[operator]
        if found <= target:
            return Design(seeds, samples, found)
    return None


def _calls(spec: ExperimentSpec, n_solved_tasks: int) -> int:
    """Solve calls of every run (at least one per solve), plus one improve call per child."""
    base = spec.base
    per_run = n_solved_tasks * base.samples * (base.generations + 1)
    improving = sum(c.improver != "noop" for c in spec.conditions)
    return (len(spec.conditions) * per_run + improving * base.generations) * len(spec.seeds)
