"""Minimum detectable effect and the noise floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsi_bench.stats import mcnemar_exact, minimum_detectable_effect, noise_floor


def _brute_mcnemar_power(n: int, rate: float, delta: float, alpha: float) -> float:
    """P(McNemar says "improved"), summing the multinomial over every (b, c)."""
    q = rate + delta
    pb, pc = rate * (1 - q), (1 - rate) * q
    total = 0.0
    for b in range(n + 1):
        for c in range(n - b + 1):
            if c > b and mcnemar_exact(b, c) < alpha:
                total += (math.factorial(n) / (math.factorial(b) * math.factorial(c)
                                               * math.factorial(n - b - c))
                          * pb ** b * pc ** c * (1 - pb - pc) ** (n - b - c))
    return total


@pytest.mark.parametrize(("n", "rate"), [(20, 0.5), (30, 0.3), (40, 0.6)])
def test_single_seed_mde_has_exactly_the_power(n: int, rate: float) -> None:
    mde = minimum_detectable_effect(n, rate)
    assert _brute_mcnemar_power(n, rate, mde, 0.05) == pytest.approx(0.8, abs=1e-4)
    assert _brute_mcnemar_power(n, rate, mde - 0.002, 0.05) < 0.8


def test_mde_shrinks_with_tasks_seeds_and_samples() -> None:
    by_n = [minimum_detectable_effect(n, 0.5) for n in (20, 82, 164, 500)]
    assert by_n == sorted(by_n, reverse=True)
    assert minimum_detectable_effect(82, 0.5, seeds=3) < by_n[1]
    assert minimum_detectable_effect(82, 0.5, seeds=3, samples=5) < \
        minimum_detectable_effect(82, 0.5, seeds=3)
    assert minimum_detectable_effect(82, 0.5, power=0.9) > by_n[1]
    assert minimum_detectable_effect(82, 0.5, alpha=0.01) > by_n[1]


def test_noise_floor_raises_the_mde() -> None:
    plain = minimum_detectable_effect(164, 0.5, seeds=3)
    assert minimum_detectable_effect(164, 0.5, seeds=3, noise_floor=0.12) > 0.12 > plain
    assert minimum_detectable_effect(164, 0.5, seeds=3, noise_floor=-0.1) == plain


def test_mde_is_infinite_without_headroom() -> None:
    assert minimum_detectable_effect(5, 0.5) == math.inf
    assert minimum_detectable_effect(82, 1.0) == math.inf
    assert 0 < minimum_detectable_effect(82, 0.0) < 1


def test_mde_rejects_bad_arguments() -> None:
    for kwargs in ({"n_tasks": 0, "base_rate": 0.5}, {"n_tasks": 10, "base_rate": 1.5},
                   {"n_tasks": 10, "base_rate": 0.5, "power": 1.0},
                   {"n_tasks": 10, "base_rate": 0.5, "seeds": 0}):
        with pytest.raises(ValueError):
            minimum_detectable_effect(**kwargs)  # type: ignore[arg-type]


def test_noise_floor_is_an_order_statistic() -> None:
    gains = list(np.linspace(-0.05, 0.14, 20))  # 20 controls: k = ceil(0.95 * 21) = 20
    assert noise_floor(gains) == pytest.approx(0.14)
    gains39 = list(np.arange(39) / 100)  # k = ceil(0.95 * 40) = 38
    assert noise_floor(gains39) == pytest.approx(0.37)
    assert noise_floor([0.02, -0.01, 0.05]) == 0.05  # few controls: the largest gain
    assert noise_floor(gains39, quantile=0.5) == pytest.approx(0.19)
    with pytest.raises(ValueError, match="empty"):
        noise_floor([])
    with pytest.raises(ValueError, match="quantile"):
        noise_floor([0.1], quantile=1.0)
