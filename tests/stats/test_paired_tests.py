"""The paired tests: sign-flip against enumeration, McNemar as its 0/1 case, compare_paired."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rsi_bench.stats import compare_paired, mcnemar_exact, sign_flip_test
from rsi_bench.stats.paired import _monte_carlo_sign_flip

TOL = 1e-9


def _enumerated(diffs: list[float]) -> float:
    """P(|sum of randomly signed diffs| >= |observed sum|) over all 2^n sign vectors."""
    observed = abs(sum(diffs))
    hits = total = 0
    for signs in itertools.product((-1, 1), repeat=len(diffs)):
        total += 1
        hits += abs(sum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - 1e-12
    return hits / total


@pytest.mark.parametrize("diffs", [
    [1 / 3, 2 / 3, -1 / 3, 1.0, 1 / 3, 0.0, 2 / 3],
    [0.1, 0.25, -0.05, 0.4, 0.3, -0.2, 0.15, 0.05, 0.35],
    [0.5, -0.5, 0.5, -0.5],
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    [0.2] * 5 + [-0.6] * 3,
])
def test_exact_sign_flip_matches_enumeration(diffs: list[float]) -> None:
    assert sign_flip_test(diffs) == pytest.approx(_enumerated(diffs), abs=TOL)


def test_sign_flip_on_0_1_outcomes_is_mcnemar() -> None:
    for b, c in [(0, 0), (3, 9), (10, 4), (0, 7), (25, 40), (13, 13)]:
        diffs = [-1.0] * b + [1.0] * c + [0.0] * 5
        expected = mcnemar_exact(b, c)
        assert sign_flip_test(diffs) == pytest.approx(expected, abs=TOL)


def test_monte_carlo_sign_flip_is_deterministic_and_close() -> None:
    rng = np.random.default_rng(5)
    diffs = rng.normal(0.05, 0.2, 14)  # no common grid: the Monte Carlo path
    exact = _enumerated(list(diffs))
    first = sign_flip_test(diffs, seed=3)
    assert first == sign_flip_test(diffs, seed=3)
    assert first == pytest.approx(exact, abs=0.01)
    small = _monte_carlo_sign_flip(np.array([1.0] * 12), 999, 0)  # never below 1 / (n + 1)
    assert small >= 1 / 1000


def test_compare_paired_binary_uses_mcnemar() -> None:
    base = [1, 1, 0, 0, 1, 0, 1, 1, 0, 0]
    cand = [1, 0, 1, 1, 1, 1, 1, 1, 1, 0]
    result = compare_paired(base, cand, n_boot=500)
    assert result.test == "mcnemar-exact"
    assert (result.b, result.c) == (1, 4)
    assert result.p_value == pytest.approx(mcnemar_exact(1, 4), abs=TOL)
    assert result.n_tasks == 10
    assert result.diff == pytest.approx(0.3, abs=TOL)
    assert result.base_score == pytest.approx(0.5) and result.cand_score == pytest.approx(0.8)
    assert result.ci_low <= result.diff <= result.ci_high


def test_compare_paired_fractions_use_exact_sign_flip() -> None:
    rng = np.random.default_rng(9)
    base = rng.binomial(5, 0.5, 40) / 5
    cand = rng.binomial(5, 0.6, 40) / 5
    result = compare_paired(base, cand, n_boot=500)
    assert result.test == "sign-flip-exact"
    assert result.p_value == pytest.approx(sign_flip_test(cand - base), abs=TOL)
    assert result.b == int(np.sum(base > cand)) and result.c == int(np.sum(cand > base))


def test_compare_paired_ties_give_p_one() -> None:
    result = compare_paired([1, 0, 1], [1, 0, 1], n_boot=100)
    assert (result.p_value, result.b, result.c, result.diff) == (1.0, 0, 0, 0.0)
    assert compare_paired([0.5, 0.2], [0.5, 0.2], n_boot=100).p_value == 1.0


@pytest.mark.parametrize(("base", "cand", "message"), [
    ([], [], "empty"),
    ([1, 0], [1], "aligned"),
    ([1.5, 0], [1, 0], r"\[0, 1\]"),
    ([0.5, float("nan")], [1, 0], "NaN"),
])
def test_compare_paired_rejects_bad_input(base: list[float], cand: list[float],
                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_paired(base, cand)
