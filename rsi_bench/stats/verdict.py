"""The verdict: did the loop improve the agent, pooled over loop seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rsi_bench.stats._checks import Values, as_pair, check_alpha
from rsi_bench.stats.paired import common_denominator, compare_paired
from rsi_bench.stats.power import minimum_detectable_effect

LABELS = ("improved", "no evidence", "regressed")
_MAX_SAMPLES = 1000  # largest per-task sample count recognised from the pass fractions


@dataclass(frozen=True)
class SeedPair:
    """One loop seed's per-task scores for the base and the candidate, aligned by task."""

    seed: int
    base: Values
    cand: Values


@dataclass(frozen=True)
class Verdict:
    """The benchmark's answer for one condition on one split."""

    label: str  # "improved" | "no evidence" | "regressed"
    effect: float  # pooled mean per-task difference cand - base, in [-1, 1]
    ci_low: float  # paired bootstrap interval of effect at confidence 1 - alpha
    ci_high: float
    p_value: float  # two-sided
    split: str
    seeds: tuple[int, ...]
    n_tasks: int
    mde: float  # minimum detectable effect at 80% power for this setup (inf: none reachable)
    noise_floor: float | None
    cost_per_point: float | None  # USD per percentage point gained
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; a non-finite number (an unreachable MDE) becomes None."""
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in data.items()}


def decide(pairs: Sequence[SeedPair], *, split: str, alpha: float = 0.05,
           noise_floor: float | None = None, cost_usd: float | None = None,
           n_boot: int = 10_000, seed: int = 0) -> Verdict:
    """Label a candidate against its base: "improved", "regressed" or "no evidence".

    Every seed scores the same tasks in the same order. The per-task scores are averaged over
    seeds, so a task counts once however many seeds ran, and the seeds' independent noise
    shrinks. On those pooled scores :func:`compare_paired` gives the effect (mean difference
    cand - base), its paired bootstrap interval at confidence 1 - alpha, and the exact p-value
    (McNemar's test when every pooled score is 0 or 1, as with one seed and one sample;
    otherwise the sign-flip test).

    "improved" needs all of: p < alpha, an interval wholly above 0 and, when a noise floor
    from noop controls is given, an effect above it (a negative floor counts as 0).
    "regressed" is the mirror image; anything else is "no evidence". The two-sided test at
    alpha bounds the chance of "improved" without a true effect at alpha / 2 for this one
    comparison; a claim chosen among many must be adjusted (see :func:`holm`).
    ``cost_per_point`` is ``cost_usd / (100 * effect)`` for a positive effect, else None.
    """
    check_alpha(alpha)
    if not pairs:
        raise ValueError("decide needs at least one seed's scores")
    seeds = tuple(int(p.seed) for p in pairs)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"loop seeds must be distinct, got {seeds}")
    arrays = [as_pair(p.base, p.cand, scores=True) for p in pairs]
    n_tasks = arrays[0][0].size
    if any(a.size != n_tasks for a, _ in arrays):
        raise ValueError("every seed must score the same tasks: "
                         f"task counts {[a.size for a, _ in arrays]}")
    base = np.mean([a for a, _ in arrays], axis=0)
    cand = np.mean([c for _, c in arrays], axis=0)
    result = compare_paired(base, cand, n_boot=n_boot, seed=seed, confidence=1.0 - alpha)
    floor = None if noise_floor is None else float(noise_floor)
    bar = max(0.0, floor) if floor is not None else 0.0
    mde = minimum_detectable_effect(
        n_tasks, result.base_score, alpha=alpha, seeds=len(pairs),
        samples=_samples_per_task([a for pair in arrays for a in pair]), noise_floor=floor)
    significant = result.p_value < alpha
    if significant and result.ci_low > 0.0 and result.diff > bar:
        label = "improved"
    elif significant and result.ci_high < 0.0 and result.diff < -bar:
        label = "regressed"
    else:
        label = "no evidence"
    cost = None
    if cost_usd is not None and result.diff > 0.0:
        cost = float(cost_usd) / (100.0 * result.diff)
    return Verdict(label=label, effect=result.diff, ci_low=result.ci_low,
                   ci_high=result.ci_high, p_value=result.p_value, split=split, seeds=seeds,
                   n_tasks=int(n_tasks), mde=mde, noise_floor=floor, cost_per_point=cost,
                   reason=_reason(label, result.diff, result.ci_low, result.ci_high,
                                  result.p_value, alpha, floor, mde, split, n_tasks,
                                  len(seeds)))


def _samples_per_task(scores: Sequence[np.ndarray]) -> int:
    """The per-task sample count the pass fractions imply (1, the conservative guess, if none).

    Fractions c/n on a common grid 1/L were most plausibly measured with L samples per task
    (at least: L only divides the true count, and fewer samples mean a larger MDE).
    """
    return common_denominator(np.concatenate(scores), _MAX_SAMPLES) or 1


def _points(value: float) -> str:
    return f"{100.0 * value:+.1f}"


def _p(value: float, alpha: float) -> str:
    if value < 0.001 < alpha:
        return "p < 0.001"
    return f"p = {value:.3g}" + (f" < {alpha:g}" if value < alpha else "")


def _reason(label: str, effect: float, low: float, high: float, p_value: float, alpha: float,
            floor: float | None, mde: float, split: str, n_tasks: int, n_seeds: int) -> str:
    where = f"{n_tasks} {split} tasks with {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    interval = f"{round(100 * (1 - alpha))}% CI {_points(low)} to {_points(high)} points"
    bar = max(0.0, floor) if floor is not None else 0.0
    if label in ("improved", "regressed"):
        moved = "rose" if label == "improved" else "fell"
        beyond = ("" if floor is None
                  else f", beyond the noise floor of {100 * bar:.1f} points from noop controls")
        return (f"The score {moved} by {abs(100 * effect):.1f} points on {where} "
                f"({interval}, {_p(p_value, alpha)}{beyond}).")
    if p_value >= alpha:
        why = f"{_p(p_value, alpha)} is not below {alpha:g}"
    elif low <= 0.0 <= high:
        why = f"the {interval} includes 0"
    else:
        why = (f"the change of {_points(effect)} points is within the noise floor of "
               f"{100 * bar:.1f} points from noop controls")
    power = ("no gain is detectable with 80% power here" if math.isinf(mde)
             else f"the smallest gain detectable with 80% power here is {100 * mde:.1f} points")
    return f"No evidence of a change on {where}: {why}; {power}."
