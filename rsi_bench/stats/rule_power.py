"""The power of the whole verdict rule, by simulation: test, interval and noise floor together.

:func:`~rsi_bench.stats.minimum_detectable_effect` models the test alone (exactly for one seed
and one sample, by a normal approximation otherwise). This module simulates what
:func:`~rsi_bench.stats.decide` itself does to each replication: pooled scores over seeds, the
exact p-value (McNemar or sign-flip), the paired bootstrap interval with the verdict's own
resampling (``n_boot`` draws from ``default_rng(seed)``, the same indices for every call, so
each replication's interval is the one ``decide`` would report), and the noise floor. Every
replication's label equals ``decide(...).label == "improved"``: the tests check that.

Replications use common random numbers: one uniform per (replication, seed, task) decides the
candidate's pass count through the binomial's inverse CDF, so a larger true gain never turns a
pass into a fail and the estimated power is (nearly) monotone in the gain, which the bisection
needs. Deterministic for a seed.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from rsi_bench.stats._checks import check_alpha
from rsi_bench.stats._special import normal_quantile
from rsi_bench.stats.intervals import _BOOT_CHUNK
from rsi_bench.stats.paired import _MAX_EXACT_CELLS, _exact_sign_flip, mcnemar_exact
from rsi_bench.stats.power import minimum_detectable_effect

N_BOOT = 10_000  # the verdict's resampling (rsi_bench.results.verdicts.N_BOOT_VERDICT)
BOOT_SEED = 0  # and its seed
REPLICATIONS = 4_000
NOISE_QUANTILE = 0.95  # rsi_bench.results.verdicts.NOISE_QUANTILE
_TOLERANCE = 5e-4  # in score points on [0, 1]: the MDE's resolution (0.05 points)
_ROUNDING = 1e-12


def shifted(rates: np.ndarray, delta: float) -> np.ndarray:
    """Every task gains the same share of its headroom; the mean gain is exactly ``delta``."""
    headroom = 1.0 - float(rates.mean())
    return np.clip(rates + delta * (1.0 - rates) / headroom, 0.0, 1.0)


class RulePower:
    """The verdict's power for fixed per-task base rates, seeds, samples and replications.

    The base scores and the candidate's uniforms are drawn once, so ``power(delta)`` for many
    deltas compares like with like (common random numbers).
    """

    def __init__(self, rates: np.ndarray, *, seeds: int = 1, samples: int = 1,
                 alpha: float = 0.05, noise_floor: float | None = None,
                 replications: int = REPLICATIONS, seed: int = 0, n_boot: int = N_BOOT,
                 control_seeds: int = 0) -> None:
        check_alpha(alpha)
        self.rates = np.asarray(rates, dtype=float)
        if self.rates.ndim != 1 or self.rates.size < 1:
            raise ValueError("rates must be a non-empty vector of per-task pass probabilities")
        if np.any((self.rates < 0) | (self.rates > 1)):
            raise ValueError("rates must lie in [0, 1]")
        if seeds < 1 or samples < 1 or replications < 1:
            raise ValueError("seeds, samples and replications must be >= 1")
        self.seeds, self.samples, self.alpha = seeds, samples, alpha
        if control_seeds and noise_floor is not None:
            raise ValueError("give a fixed noise_floor or control_seeds to draw it, not both")
        self.replications = replications
        n = self.rates.size
        rng = np.random.default_rng(seed)
        # pooled base scores in units of 1 / (seeds * samples): sums of pass counts over seeds
        self.base_units = rng.binomial(samples, self.rates, size=(replications, seeds, n)
                                       ).sum(axis=1)
        self.uniforms = rng.random((replications, seeds, n))
        self.bar = np.full(replications, max(0.0, noise_floor or 0.0))
        if control_seeds:
            self.bar = np.maximum(0.0, self._control_floors(rng, control_seeds))
        self.counts = _bootstrap_counts(n, n_boot)

    def _control_floors(self, rng: np.random.Generator, controls: int) -> np.ndarray:
        """Each replication's noise floor from ``controls`` noop runs (one per loop seed).

        A noop run's selected generation is an identical copy picked on dev, so its held-out
        score is a fresh draw from the base rates, independent of the pick: its apparent gain
        is the mean of two independent draws' difference. The floor is the report's order
        statistic of those gains (``rsi_bench.stats.noise_floor`` at 0.95)."""
        n = self.rates.size
        draws = rng.binomial(self.samples, self.rates, size=(2, self.replications, controls, n))
        gains = np.sort((draws[1] - draws[0]).mean(axis=2) / self.samples, axis=1)
        k = min(controls, math.ceil(NOISE_QUANTILE * (controls + 1)))
        return gains[:, k - 1]

    @property
    def grid(self) -> int:
        return self.seeds * self.samples

    def candidate_units(self, delta: float) -> np.ndarray:
        """Pooled candidate pass counts (replications x tasks) for a true mean gain ``delta``."""
        p = shifted(self.rates, delta)
        k = np.arange(self.samples + 1)
        log_c = np.array([math.lgamma(self.samples + 1) - math.lgamma(j + 1)
                          - math.lgamma(self.samples - j + 1) for j in k])
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 is 0 here
            logs = (log_c[:, None] + _xlog(k[:, None], np.log(p)[None, :])
                    + _xlog((self.samples - k)[:, None], np.log1p(-p)[None, :]))
        cdf = np.cumsum(np.exp(logs), axis=0)  # (samples + 1, tasks)
        cdf[-1] = 1.0
        passes = (self.uniforms[..., None, :] > cdf[None, None, :-1, :]).sum(axis=2)
        return passes.sum(axis=1)

    def improved(self, delta: float) -> np.ndarray:
        """For each replication, whether decide() labels the candidate "improved"."""
        units = self.candidate_units(delta) - self.base_units  # (R, n) integers
        n = units.shape[1]
        diff = units.sum(axis=1) / (n * self.grid)
        diff = np.where(np.abs(diff) < _ROUNDING, 0.0, diff)
        candidates = np.flatnonzero(diff > self.bar)
        significant = np.array([self._p_value(units[i]) < self.alpha for i in candidates],
                               dtype=bool)
        candidates = candidates[significant]
        out = np.zeros(units.shape[0], dtype=bool)
        if candidates.size:
            out[candidates[self._ci_low_positive(units[candidates])]] = True
        return out

    def power(self, delta: float) -> float:
        return float(self.improved(delta).mean())

    def _ci_low_positive(self, units: np.ndarray) -> np.ndarray:
        """Whether the bootstrap interval's lower bound is above 0, exactly as paired_bootstrap
        computes it (numpy's linear quantile), without sorting every column: the bound lies
        between the order statistics at floor(h) and floor(h) + 1, so the count of resampled
        sums <= 0 settles it unless it falls between them."""
        sums = self.counts @ units.T.astype(np.float32)  # exact: small integers
        h = self.alpha / 2.0 * (sums.shape[0] - 1)
        below = np.count_nonzero(sums <= 0.0, axis=0)
        positive = below <= math.floor(h)
        unsure = np.flatnonzero(below == math.floor(h) + 1)
        if unsure.size:
            low = np.quantile(sums[:, unsure], self.alpha / 2.0, axis=0)
            low /= units.shape[1] * self.grid
            positive[unsure] = np.where(np.abs(low) < _ROUNDING, 0.0, low) > 0.0
        return positive

    def _p_value(self, units: np.ndarray) -> float:
        if self.grid == 1:
            return _mcnemar(int(np.count_nonzero(units < 0)), int(np.count_nonzero(units > 0)))
        nonzero = np.abs(units[units != 0])
        return _sign_flip_p(tuple(np.bincount(nonzero, minlength=1).tolist()), int(units.sum()))


def _xlog(count: np.ndarray, log_p: np.ndarray) -> np.ndarray:
    return np.where(count == 0, 0.0, count * log_p)


@lru_cache(maxsize=4096)
def _mcnemar(b: int, c: int) -> float:
    return mcnemar_exact(b, c)


@lru_cache(maxsize=65536)
def _sign_flip_p(magnitudes: tuple[int, ...], total: int) -> float:
    """The verdict's exact sign-flip p-value: it depends only on the multiset of nonzero
    |differences| in grid units (``magnitudes[u]`` tasks differ by u) and on |their sum|."""
    units = np.repeat(np.arange(len(magnitudes)), magnitudes).astype(np.int64)
    if units.size == 0:
        return 1.0
    if units.size * int(units.sum()) > _MAX_EXACT_CELLS:
        raise ValueError("too many tasks and samples for the exact sign-flip test; the verdict "
                         "would use its Monte Carlo test, which this simulation does not model")
    return _exact_sign_flip(units, total)


@lru_cache(maxsize=8)
def _bootstrap_counts(n: int, n_boot: int) -> np.ndarray:
    """How often paired_bootstrap's replicate b draws task j (its RNG stream, its chunking)."""
    rng = np.random.default_rng(BOOT_SEED)
    counts = np.zeros((n_boot, n), dtype=np.float32)
    rows = max(1, _BOOT_CHUNK // n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        draws = rng.integers(0, n, size=(stop - start, n))
        np.add.at(counts, (np.arange(start, stop)[:, None], draws), np.float32(1.0))
    return counts


def rule_power_hits(rates: np.ndarray, delta: float, *, seeds: int = 1, samples: int = 1,
                    alpha: float = 0.05, noise_floor: float | None = None,
                    control_seeds: int = 0, replications: int = 40_000, seed: int = 0,
                    chunk: int = REPLICATIONS, n_boot: int = N_BOOT) -> tuple[int, int]:
    """(replications labelled "improved", replications) for a true mean gain ``delta``.

    For checking a power claim with many replications: independent chunks of ``chunk``
    replications (each a :class:`RulePower` from its own child of ``SeedSequence(seed)``, so
    memory stays bounded), every label the one :func:`~rsi_bench.stats.decide` gives."""
    if replications < 1 or chunk < 1:
        raise ValueError("replications and chunk must be >= 1")
    sizes = [chunk] * (replications // chunk) + ([replications % chunk] if replications % chunk
                                                 else [])
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    hits = 0
    for size, child in zip(sizes, children, strict=True):
        sim = RulePower(np.asarray(rates, dtype=float), seeds=seeds, samples=samples,
                        alpha=alpha, noise_floor=noise_floor, replications=size,
                        seed=int(child.generate_state(1)[0]), n_boot=n_boot,
                        control_seeds=control_seeds)
        hits += int(sim.improved(delta).sum())
    return hits, replications


def simulated_mde(rates: np.ndarray, *, seeds: int = 1, samples: int = 1, alpha: float = 0.05,
                  power: float = 0.8, noise_floor: float | None = None,
                  replications: int = REPLICATIONS, seed: int = 0,
                  confidence: float = 0.95, control_seeds: int = 0) -> float:
    """The smallest true mean gain whose power under the whole rule is at least ``power``,
    with the simulation's own error accounted for: the lower ``confidence`` Wilson bound of
    the simulated power must reach ``power``. So the promised power is not a coin flip around
    the target (an MDE with power exactly 0.80 is found in fewer than 80% of any finite set of
    replications half the time). ``math.inf`` when no gain up to the headroom reaches it."""
    sim = RulePower(np.asarray(rates, dtype=float), seeds=seeds, samples=samples, alpha=alpha,
                    noise_floor=noise_floor, replications=replications, seed=seed,
                    control_seeds=control_seeds)
    z = normal_quantile(0.5 + confidence / 2.0)

    def enough(delta: float) -> bool:
        hits = sim.power(delta) * replications
        return _wilson_low(hits, replications, z) >= power

    headroom = 1.0 - float(sim.rates.mean())
    if headroom <= 0.0 or not enough(headroom):
        return math.inf
    # bracket around the test-only MDE: the rule's differs from it by a few points at most
    guess = minimum_detectable_effect(sim.rates.size, float(sim.rates.mean()), alpha=alpha,
                                      power=power, seeds=seeds, samples=samples,
                                      noise_floor=noise_floor)
    low, high = 0.0, headroom
    if math.isfinite(guess):
        if guess * 1.3 < headroom and enough(guess * 1.3):
            high = guess * 1.3
        if not enough(guess * 0.7):
            low = guess * 0.7
    while high - low > _TOLERANCE:
        middle = (low + high) / 2.0
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def _wilson_low(successes: float, n: int, z: float) -> float:
    rate, z2 = successes / n, z * z
    center = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return center - half
