"""What a suite can detect: the minimum detectable effect, and the noise floor of noop controls."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from rsi_bench.stats._checks import Values, as_vector, check_alpha
from rsi_bench.stats._special import normal_cdf, normal_quantile

_EXACT_MAX_TASKS = 1000  # exact McNemar power up to here; the normal approximation beyond
_TOLERANCE = 1e-6  # in score points on [0, 1]


def minimum_detectable_effect(n_tasks: int, base_rate: float, *, alpha: float = 0.05,
                              power: float = 0.8, seeds: int = 1, samples: int = 1,
                              noise_floor: float | None = None) -> float:
    """The smallest true gain that :func:`~rsi_bench.stats.decide` labels "improved" with
    probability ``power`` (Cohen, 1988), in score points on [0, 1] (0.05 = 5 points).

    Generative model. Task i has base pass probability p_i with mean ``base_rate``; the
    candidate passes it with probability p_i + delta (1 - p_i) / (1 - base_rate), i.e. every
    task gains the same share of its headroom and the mean gain is exactly delta; under equal
    p_i this is a uniform shift of delta. Each of ``seeds`` independent loop seeds scores base
    and candidate with ``samples`` independent samples per task. Per-task scores are pass
    fractions averaged over seeds, and the test is :func:`decide`'s: two-sided at ``alpha``,
    counted only when it favours the candidate, and, given a ``noise_floor``, only when the
    observed gain exceeds it.

    The power is computed for equal p_i = base_rate. That maximizes each task's outcome
    variance p(1 - p), so tasks of mixed difficulty (the usual case) give more power and this
    MDE is conservative for them. With one seed and one sample the power is exact (McNemar's
    test on the binomial discordant counts); otherwise it is a normal approximation of the
    sign-flip test with a continuity correction. Returns ``math.inf`` when no gain up to
    ``1 - base_rate`` reaches the power. The verdict's interval condition is not modelled: the
    bootstrap interval's width comes from the observed spread of the differences, which is
    smaller than the test's null spread, so at the default 10,000 resamples it does not bind
    where the test rejects. ``rsi_bench.stats.validity`` checks the whole rule by simulation.
    """
    check_alpha(alpha)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be strictly between 0 and 1, got {power}")
    if n_tasks < 1 or seeds < 1 or samples < 1:
        raise ValueError(f"need n_tasks, seeds, samples >= 1 "
                         f"(n_tasks={n_tasks}, seeds={seeds}, samples={samples})")
    if not 0.0 <= base_rate <= 1.0:
        raise ValueError(f"base_rate must lie in [0, 1], got {base_rate}")
    floor = max(0.0, noise_floor) if noise_floor is not None else 0.0
    headroom = 1.0 - base_rate
    if headroom <= 0.0:
        return math.inf

    def achieved(delta: float) -> float:
        if seeds == 1 and samples == 1 and n_tasks <= _EXACT_MAX_TASKS:
            return _mcnemar_power(n_tasks, base_rate, delta, alpha, floor)
        return _normal_power(n_tasks, base_rate, delta, alpha, floor, seeds * samples)

    # power grows with delta: bisect for the smallest delta that reaches it
    low, high = 0.0, headroom
    if achieved(high) < power:
        return math.inf
    while high - low > _TOLERANCE:
        middle = (low + high) / 2.0
        low, high = (low, middle) if achieved(middle) >= power else (middle, high)
    return high


def _normal_power(n: int, rate: float, delta: float, alpha: float, floor: float,
                  draws: int) -> float:
    """P(sign-flip test rejects for the candidate and mean gain > floor), normal approximation.

    T = sum of per-task differences has mean n delta and variance n v; the test compares T
    with z sqrt(sum d_i^2), whose square is about n (v + delta^2). T moves in steps of
    2 / draws under the null, hence the continuity correction of half a step.
    """
    q = rate + delta
    v = (rate * (1.0 - rate) + q * (1.0 - q)) / draws
    if v <= 0.0:
        return 1.0 if delta > floor else 0.0
    z = normal_quantile(1.0 - alpha / 2.0)
    threshold = max(z * math.sqrt(n * (v + delta * delta)), n * floor) + 1.0 / draws
    return normal_cdf((n * delta - threshold) / math.sqrt(n * v))


@lru_cache(maxsize=64)
def _mcnemar_critical(n: int, alpha: float, floor: float) -> np.ndarray:
    """For m discordant tasks, the largest b (candidate worse) that still gives "improved"."""
    log_fact = _log_factorials(n)
    critical = np.full(n + 1, -1, dtype=np.int64)
    for m in range(1, n + 1):
        i = np.arange(m + 1)
        tail = np.cumsum(np.exp(log_fact[m] - log_fact[i] - log_fact[m - i] - m * math.log(2)))
        ok = (2.0 * tail < alpha) & (m - 2 * i > 0) & (m - 2 * i > n * floor)
        if ok.any():
            critical[m] = int(np.flatnonzero(ok)[-1])
    return critical


def _mcnemar_power(n: int, rate: float, delta: float, alpha: float, floor: float) -> float:
    """Exact P(McNemar rejects for the candidate) with independent Bernoulli outcomes."""
    q = rate + delta
    worse, better = rate * (1.0 - q), (1.0 - rate) * q
    discordant = worse + better
    if discordant <= 0.0:
        return 0.0
    critical = _mcnemar_critical(n, alpha, floor)
    log_fact = _log_factorials(n)
    m = np.arange(n + 1)
    p_m = _binomial_pmf(log_fact, n, m, discordant)
    rows = np.flatnonzero((critical >= 0) & (p_m > 1e-17))
    if rows.size == 0:
        return 0.0
    # P(B <= critical[m] | m) for B ~ Binomial(m, worse / discordant), for all likely m at once
    b = np.arange(int(critical[rows].max()) + 1)[None, :]
    counts = rows[:, None]
    cells = _binomial_pmf(log_fact, counts, np.minimum(b, counts), worse / discordant)
    inside = b <= critical[rows][:, None]
    return min(1.0, float(p_m[rows] @ np.where(inside, cells, 0.0).sum(axis=1)))


@lru_cache(maxsize=8)
def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])


def _binomial_pmf(log_fact: np.ndarray, n: int | np.ndarray, k: np.ndarray,
                  p: float) -> np.ndarray:
    if p <= 0.0:
        return (k == 0).astype(float)
    if p >= 1.0:
        return (k == n).astype(float)
    return np.exp(log_fact[n] - log_fact[k] - log_fact[n - k]
                  + k * math.log(p) + (n - k) * math.log1p(-p))


def noise_floor(control_gains: Values, quantile: float = 0.95) -> float:
    """The apparent gain a change with no true effect reaches, from ``noop`` control runs.

    ``control_gains`` are the held-out gains (selected generation minus generation 0) of
    control runs whose improver copies the agent unchanged, so every gain is noise plus
    selection. Returns the k-th smallest gain with k = ceil(quantile (n + 1)): for one more
    exchangeable control run, P(gain <= floor) >= quantile, free of any distributional
    assumption (an order-statistic prediction bound; Wilks, 1941). With fewer than
    quantile / (1 - quantile) controls (19 at 0.95) that k exceeds n and the floor is the
    largest gain, whose guarantee is only n / (n + 1).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be strictly between 0 and 1, got {quantile}")
    gains = np.sort(as_vector(control_gains, "control_gains"))
    k = min(gains.size, math.ceil(quantile * (gains.size + 1)))
    return float(gains[k - 1])
