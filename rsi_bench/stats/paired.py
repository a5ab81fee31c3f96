"""Paired tests of a candidate against a base on the same tasks.

Both tests condition on the observed per-task differences and ask how extreme their sum is if
base and candidate were exchangeable on every task (the null hypothesis "no effect"): then each
difference is as likely to have either sign. For pass/fail outcomes this is McNemar's exact test
(McNemar, 1947); for per-task pass fractions it is Fisher's sign-flip randomization test
(Fisher, 1935), computed exactly whenever the fractions lie on a common grid (k/n_samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rsi_bench.stats._checks import Values, as_pair, as_vector
from rsi_bench.stats._special import binomial_half_cdf
from rsi_bench.stats.intervals import paired_bootstrap

_MAX_DENOMINATOR = 10_000  # per-task scores are pass fractions c/n with n well below this
_MAX_EXACT_CELLS = 50_000_000  # work bound for the exact sign-flip distribution
_N_PERM = 20_000  # Monte Carlo sign flips when no common grid exists
_PERM_CHUNK = 1_000_000
_ROUNDING = 1e-12


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value (McNemar, 1947) from the discordant counts b and c.

    Under no effect each of the ``b + c`` discordant tasks is equally likely to favour either
    side, so ``min(b, c) ~ Binomial(b + c, 1/2)`` and p = min(1, 2 P(X <= min(b, c))). Same as
    ``statsmodels`` ``mcnemar(table, exact=True)``; b = c = 0 (no discordant task) gives 1.
    """
    if b < 0 or c < 0 or b != int(b) or c != int(c):
        raise ValueError(f"b and c are counts of tasks, got b={b}, c={c}")
    b, c = int(b), int(c)
    return min(1.0, 2.0 * binomial_half_cdf(min(b, c), b + c))


def sign_flip_test(differences: Values, *, n_perm: int = _N_PERM,
                   seed: int = 0) -> float:
    """Two-sided sign-flip randomization test of mean zero (Fisher, 1935).

    The statistic is the sum of the per-task differences; its null distribution flips the sign
    of each difference independently with probability 1/2, and p = P(|T*| >= |T|). When the
    differences are multiples of a common 1/L (pass fractions c/n, averages over seeds), the
    distribution is computed exactly by convolution; otherwise p = (1 + #{|T*| >= |T|}) /
    (1 + n_perm) over ``n_perm`` random flips from ``numpy.random.default_rng(seed)``, which is
    a valid p-value. For 0/1 outcomes this equals :func:`mcnemar_exact`.
    """
    return _sign_flip(as_vector(differences, "differences"), n_perm, seed)[0]


def _sign_flip(diffs: np.ndarray, n_perm: int, seed: int) -> tuple[float, bool]:
    """(p, exact) for the sign-flip test of ``diffs``."""
    nonzero = diffs[np.abs(diffs) > _ROUNDING]  # means over seeds leave ~1e-17 for ties
    if nonzero.size == 0:
        return 1.0, True
    grid = common_denominator(np.abs(nonzero))
    if grid is not None:
        units = np.rint(np.abs(nonzero) * grid).astype(np.int64)
        if units.size * int(units.sum()) <= _MAX_EXACT_CELLS:
            observed = int(np.rint(nonzero.sum() * grid))
            return _exact_sign_flip(units, observed), True
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    return _monte_carlo_sign_flip(nonzero, n_perm, seed), False


def common_denominator(values: np.ndarray, limit: int = _MAX_DENOMINATOR) -> int | None:
    """The least L <= limit with every value * L an integer (to 1e-9), or None."""
    denominator = 1
    for value in np.unique(values):
        fraction = Fraction(float(value)).limit_denominator(limit)
        if abs(float(fraction) - float(value)) > 1e-9:
            return None
        denominator = math.lcm(denominator, fraction.denominator)
        if denominator > limit:
            return None
    return denominator


def _exact_sign_flip(units: np.ndarray, observed: int) -> float:
    """P(|sum s_i u_i| >= |observed|) for independent fair signs s_i and positive integers u_i.

    With P the sum of the u_i that get a plus sign, the statistic is 2P - sum(u); the law of P
    is the product of the generating polynomials (1 + x^u_i) / 2, built one task at a time.
    """
    total = int(units.sum())
    law = np.zeros(total + 1)
    law[0] = 1.0
    reach = 0
    for u in np.sort(units):
        u = int(u)
        shifted = law[:reach + 1].copy()
        law[:reach + u + 1] *= 0.5
        law[u:reach + u + 1] += 0.5 * shifted
        reach += u
    statistic = np.abs(2 * np.arange(total + 1) - total)
    return float(min(1.0, law[statistic >= abs(observed)].sum()))


def _monte_carlo_sign_flip(diffs: np.ndarray, n_perm: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    observed = abs(float(diffs.sum()))
    tolerance = 1e-12 * max(1.0, float(np.abs(diffs).sum()))
    hits = 0
    rows = max(1, _PERM_CHUNK // diffs.size)
    for start in range(0, n_perm, rows):
        signs = rng.integers(0, 2, size=(min(rows, n_perm - start), diffs.size)) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ diffs) >= observed - tolerance))
    return (1 + hits) / (1 + n_perm)


@dataclass(frozen=True)
class Comparison:
    """A candidate against a base on the same tasks (scores are per-task means in [0, 1])."""

    n_tasks: int
    base_score: float
    cand_score: float
    diff: float  # cand_score - base_score
    ci_low: float  # paired bootstrap interval of diff
    ci_high: float
    p_value: float  # two-sided
    b: int  # tasks where base scores higher than cand (base passes, cand fails when 0/1)
    c: int  # tasks where cand scores higher than base
    test: str  # "mcnemar-exact" | "sign-flip-exact" | "sign-flip-monte-carlo"


def compare_paired(base: Values, cand: Values, *, n_boot: int = 10_000,
                   seed: int = 0, confidence: float = 0.95) -> Comparison:
    """Compare per-task scores of a candidate with a base, paired by task.

    ``base`` and ``cand`` hold one score in [0, 1] per task, in the same task order: the pass
    fraction over the task's samples (0 or 1 with one sample). When every score is 0 or 1 the
    p-value is McNemar's exact test on the discordant tasks; otherwise it is the sign-flip test
    on the per-task differences (:func:`sign_flip_test`, exact on a common grid). The
    difference and its interval come from :func:`paired_bootstrap` with the same seed.
    """
    a, b = as_pair(base, cand, scores=True)
    diff, low, high = paired_bootstrap(a, b, n_boot=n_boot, seed=seed, confidence=confidence)
    worse, better = int(np.count_nonzero(a > b)), int(np.count_nonzero(b > a))
    if np.all((a == 0.0) | (a == 1.0)) and np.all((b == 0.0) | (b == 1.0)):
        p_value, test = mcnemar_exact(worse, better), "mcnemar-exact"
    else:
        p_value, exact = _sign_flip(b - a, _N_PERM, seed)
        test = "sign-flip-exact" if exact else "sign-flip-monte-carlo"
    return Comparison(n_tasks=int(a.size), base_score=float(a.mean()), cand_score=float(b.mean()),
                      diff=diff, ci_low=low, ci_high=high, p_value=p_value, b=worse, c=better,
                      test=test)
