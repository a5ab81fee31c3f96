"""Confidence intervals: Wilson's for a pass rate, a paired bootstrap for a difference."""

from __future__ import annotations

import math

import numpy as np

from rsi_bench.stats._checks import Values, as_pair, check_confidence
from rsi_bench.stats._special import normal_quantile

_BOOT_CHUNK = 2_000_000  # resampled indices held in memory at once
_ROUNDING = 1e-12


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson, 1927).

    Unlike the normal ("Wald") interval it stays inside [0, 1] and keeps close to its nominal
    coverage for small n and for rates near 0 or 1, which is where pass rates of coding agents
    often sit. Same formula as ``statsmodels`` ``proportion_confint(method="wilson")``.

    ``successes`` may be fractional, e.g. the sum of per-task pass fractions over several
    samples; the interval then treats the mean score as a proportion of n tasks, which
    overstates its variance (averaging samples per task only reduces it), so it errs wide.
    """
    check_confidence(confidence)
    if n < 1:
        raise ValueError(f"a Wilson interval needs n >= 1 trials, got n={n}")
    if not 0.0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n] (successes={successes}, n={n})")
    z = normal_quantile(0.5 + confidence / 2.0)
    rate, z2 = successes / n, z * z
    denominator = 1.0 + z2 / n
    center = (rate + z2 / (2.0 * n)) / denominator
    half = z * math.sqrt(rate * (1.0 - rate) / n + z2 / (4.0 * n * n)) / denominator
    # exact at the ends: no failure seen means the upper bound is 1, no success the lower 0
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


def paired_bootstrap(base: Values, cand: Values, *, n_boot: int = 10_000,
                     seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean paired difference ``cand - base`` and its percentile bootstrap interval (Efron, 1979).

    Tasks are the resampling unit: each replicate draws n tasks with replacement (from
    ``numpy.random.default_rng(seed)``) and takes the mean of their differences, so the
    pairing of base and candidate on the same task is kept. Returns ``(diff, low, high)`` with
    the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the replicates.
    Deterministic for a given seed. The percentile interval is slightly narrow for very few
    tasks; the verdict never rests on it alone (it also needs the exact test).
    """
    check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    a, b = as_pair(base, cand)
    diffs = b - a
    n = diffs.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    rows = max(1, _BOOT_CHUNK // n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        means[start:stop] = diffs[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    bounds = np.quantile(means, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    # means of a few grid values (k/3, k/10) carry rounding noise around 0; a bound of 1e-18
    # must not read as "excludes 0"
    low, high = (0.0 if abs(v) < _ROUNDING else float(v) for v in bounds)
    mean = float(diffs.mean())
    return (0.0 if abs(mean) < _ROUNDING else mean), low, high
