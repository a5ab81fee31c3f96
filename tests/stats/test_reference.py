"""rsi_bench.stats against scipy / statsmodels (the references) and brute force, to 1e-9."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from rsi_bench.stats import (
    holm,
    mcnemar_exact,
    mean_pass_at_k,
    paired_bootstrap,
    pass_at_k,
    trend_test,
    wilson_interval,
)
from rsi_bench.stats._special import betainc, student_t_two_sided

TOL = 1e-9


@pytest.mark.parametrize("n", [1, 2, 5, 20, 82, 164, 1000])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_matches_statsmodels(n: int, confidence: float) -> None:
    for successes in sorted({0, 1, n // 3, n // 2, n - 1, n, 0.5 * n + 0.25}):
        if not 0 <= successes <= n:
            continue
        ours = wilson_interval(successes, n, confidence)
        low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
        assert ours == pytest.approx((low, high), abs=TOL)
        assert 0.0 <= ours[0] <= successes / n <= ours[1] <= 1.0


@pytest.mark.parametrize("b", [0, 1, 2, 3, 5, 8, 13, 21, 40])
@pytest.mark.parametrize("c", [0, 1, 4, 7, 12, 25, 60])
def test_mcnemar_matches_statsmodels(b: int, c: int) -> None:
    reference = mcnemar([[30, b], [c, 17]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(reference, abs=TOL)
    assert mcnemar_exact(b, c) == mcnemar_exact(c, b)


def test_mcnemar_large_counts_match_statsmodels() -> None:
    for b, c in [(120, 80), (400, 380), (1000, 1100), (3, 500)]:
        reference = mcnemar([[0, b], [c, 0]], exact=True).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(reference, abs=TOL)


P_FAMILIES = [
    [0.01],
    [0.01, 0.04, 0.03, 0.005],
    [0.2, 0.2, 0.01, 0.5, 0.049, 0.9],
    [0.0, 1.0, 0.3],
    list(np.random.default_rng(3).uniform(0, 0.2, 25)),
]


@pytest.mark.parametrize("p_values", P_FAMILIES)
def test_holm_matches_statsmodels(p_values: list[float]) -> None:
    reference = multipletests(p_values, method="holm")[1]
    assert holm(p_values) == pytest.approx(list(reference), abs=TOL)


_NOISE = np.random.default_rng(1)
TRENDS = [
    ([0, 1, 2, 3, 4], [0.5, 0.52, 0.49, 0.55, 0.6]),
    ([0, 1, 2], [0.1, 0.3, 0.2]),
    (list(range(12)), list(0.4 + 0.01 * np.arange(12) + _NOISE.normal(0, 0.02, 12))),
    (list(range(30)), list(_NOISE.uniform(0, 1, 30))),
    ([0.0, 0.5, 0.5, 2.0, 7.0], [3.0, 2.0, 2.5, 1.0, -4.0]),
    (list(range(200)), list(0.001 * np.arange(200) + _NOISE.normal(0, 0.05, 200))),
]


@pytest.mark.parametrize(("x", "y"), TRENDS)
def test_trend_matches_linregress(x: list[float], y: list[float]) -> None:
    ours, reference = trend_test(x, y), scipy.stats.linregress(x, y)
    assert ours.slope == pytest.approx(reference.slope, abs=TOL)
    assert ours.intercept == pytest.approx(reference.intercept, abs=TOL)
    assert ours.p_value == pytest.approx(reference.pvalue, abs=TOL)
    assert ours.n == len(x)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 100, 1000])
def test_student_t_tail_matches_scipy(df: int) -> None:
    for t in [0.0, 0.1, 0.7, 1.5, 2.0, 3.3, 8.0, 40.0, -2.5]:
        reference = 2 * scipy.stats.t.sf(abs(t), df)
        assert student_t_two_sided(t, df) == pytest.approx(reference, abs=TOL)


def test_incomplete_beta_matches_scipy() -> None:
    for a, b in itertools.product([0.5, 1.0, 2.5, 15.0, 250.0], [0.5, 1.0, 3.0, 40.0]):
        for x in [0.0, 1e-6, 0.05, 0.3, 0.5, 0.77, 0.99, 1.0]:
            assert betainc(a, b, x) == pytest.approx(scipy.special.betainc(a, b, x), abs=TOL)


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    """The fraction of all k-subsets of the n samples that hold at least one correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


def test_pass_at_k_matches_brute_force() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=TOL)
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=TOL)


def test_pass_at_k_large_n_is_finite() -> None:
    exact = 1 - math.comb(9997, 100) / math.comb(10_000, 100)
    assert pass_at_k(10_000, 3, 100) == pytest.approx(exact, abs=TOL)


def test_mean_pass_at_k_skips_k_above_fewest_samples() -> None:
    counts = {"a": (5, 2), "b": (3, 0), "c": (3, 3)}
    result = mean_pass_at_k(counts, [1, 3, 5])
    assert set(result) == {"pass@1", "pass@3"}
    assert result["pass@1"] == pytest.approx((0.4 + 0 + 1) / 3, abs=TOL)
    assert mean_pass_at_k({}, [1]) == {}


def test_bootstrap_is_deterministic_given_seed() -> None:
    rng = np.random.default_rng(7)
    base, cand = rng.uniform(0, 1, 82), rng.uniform(0, 1, 82)
    first = paired_bootstrap(base, cand, n_boot=2000, seed=11)
    assert paired_bootstrap(list(base), list(cand), n_boot=2000, seed=11) == first
    assert paired_bootstrap(base, cand, n_boot=2000, seed=12) != first
    assert first[0] == pytest.approx(float(np.mean(cand - base)), abs=TOL)
    assert first[1] <= first[0] <= first[2]


def test_bootstrap_interval_covers_the_truth() -> None:
    """Tasks drawn from a population with a known mean gain; the 95% interval covers it."""
    rng = np.random.default_rng(2024)
    trials, covered, n, gain = 300, 0, 82, 0.08
    for trial in range(trials):
        p = rng.beta(0.5, 0.5, n)
        q = p + gain * (1 - p) / 0.5  # population mean of p is 0.5, so the mean gain is `gain`
        base, cand = rng.binomial(1, p), rng.binomial(1, np.minimum(q, 1.0))
        truth = gain - float(np.mean(np.maximum(q - 1.0, 0.0))) if np.any(q > 1) else gain
        _, low, high = paired_bootstrap(base, cand, n_boot=1000, seed=trial)
        covered += low <= truth <= high
    assert covered / trials >= 0.90


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson_interval(0, 0), "n >= 1"),
        (lambda: wilson_interval(3, 2), r"\[0, n\]"),
        (lambda: wilson_interval(1, 2, confidence=1.0), "confidence"),
        (lambda: mcnemar_exact(-1, 2), "counts"),
        (lambda: paired_bootstrap([], []), "empty"),
        (lambda: paired_bootstrap([1.0], [1.0, 0.0]), "aligned"),
        (lambda: paired_bootstrap([float("nan")], [0.0]), "NaN"),
        (lambda: trend_test([], []), "empty"),
        (lambda: trend_test([1, 2], [0.1, 0.2]), "at least 3"),
        (lambda: trend_test([1, 1, 1], [0.1, 0.2, 0.3]), "constant"),
        (lambda: holm([0.5, 1.2]), r"\[0, 1\]"),
        (lambda: pass_at_k(0, 0, 1), "k <= n"),
        (lambda: pass_at_k(3, 4, 1), "c <= n"),
        (lambda: pass_at_k(2, 1, 3), "k <= n"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_edge_cases() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert holm([]) == []
    assert wilson_interval(0, 1)[0] == 0.0 and wilson_interval(1, 1)[1] == 1.0
    flat = trend_test([0, 1, 2, 3], [0.5, 0.5, 0.5, 0.5])
    assert (flat.slope, flat.p_value) == (0.0, 1.0)  # scipy returns NaN here
    assert paired_bootstrap([1, 0, 1], [1, 0, 1], n_boot=100) == (0.0, 0.0, 0.0)
