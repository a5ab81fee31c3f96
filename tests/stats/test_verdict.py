"""decide(): pooling seeds, the labels and their reasons."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rsi_bench.stats import SeedPair, compare_paired, decide, minimum_detectable_effect


def _pairs(n: int, base_rate: float, cand_rate: float, seeds: int = 1, seed: int = 0,
           samples: int = 1) -> list[SeedPair]:
    rng = np.random.default_rng(seed)
    return [SeedPair(s, rng.binomial(samples, base_rate, n) / samples,
                     rng.binomial(samples, cand_rate, n) / samples) for s in range(seeds)]


def test_clear_gain_is_improved() -> None:
    verdict = decide(_pairs(164, 0.3, 0.7, seeds=3), split="heldout", cost_usd=12.0,
                     n_boot=2000)
    assert verdict.label == "improved"
    assert verdict.p_value < 0.05 and verdict.ci_low > 0
    assert verdict.seeds == (0, 1, 2) and verdict.n_tasks == 164 and verdict.split == "heldout"
    assert verdict.cost_per_point == pytest.approx(12.0 / (100 * verdict.effect))
    assert verdict.reason.startswith("The score rose by")
    assert verdict.noise_floor is None


def test_clear_loss_is_regressed() -> None:
    verdict = decide(_pairs(164, 0.7, 0.3), split="sealed", cost_usd=5.0, n_boot=2000)
    assert verdict.label == "regressed"
    assert verdict.ci_high < 0 and verdict.effect < 0
    assert verdict.cost_per_point is None
    assert "fell" in verdict.reason


def test_no_change_is_no_evidence() -> None:
    pairs = [SeedPair(1, [1, 0, 1, 1, 0], [1, 0, 1, 1, 0])]
    verdict = decide(pairs, split="heldout", n_boot=200)
    assert verdict.label == "no evidence"
    assert verdict.p_value == 1.0 and verdict.effect == 0.0
    assert verdict.reason.startswith("No evidence") and "p = 1" in verdict.reason
    assert verdict.mde == math.inf  # 5 tasks cannot show anything
    assert verdict.to_dict()["mde"] is None


def test_noise_floor_blocks_a_significant_gain_below_it() -> None:
    pairs = _pairs(164, 0.3, 0.7, seeds=3)
    plain = decide(pairs, split="heldout", n_boot=1000)
    floored = decide(pairs, split="heldout", noise_floor=plain.effect + 0.01, n_boot=1000)
    assert plain.label == "improved" and floored.label == "no evidence"
    assert "noise floor" in floored.reason
    assert floored.noise_floor == pytest.approx(plain.effect + 0.01)
    assert floored.mde > plain.mde


def test_seeds_are_pooled_per_task() -> None:
    pairs = _pairs(50, 0.4, 0.55, seeds=3, seed=4)
    verdict = decide(pairs, split="heldout", n_boot=1000, seed=7)
    base = np.mean([np.asarray(p.base) for p in pairs], axis=0)
    cand = np.mean([np.asarray(p.cand) for p in pairs], axis=0)
    pooled = compare_paired(base, cand, n_boot=1000, seed=7, confidence=0.95)
    assert verdict.effect == pytest.approx(pooled.diff)
    assert verdict.p_value == pytest.approx(pooled.p_value)
    assert (verdict.ci_low, verdict.ci_high) == pytest.approx((pooled.ci_low, pooled.ci_high))
    assert verdict.mde == pytest.approx(
        minimum_detectable_effect(50, pooled.base_score, seeds=3, samples=1))


def test_samples_per_task_are_read_from_the_fractions() -> None:
    pairs = _pairs(60, 0.4, 0.5, seeds=2, samples=4, seed=2)
    verdict = decide(pairs, split="heldout", n_boot=500)
    base_rate = float(np.mean([p.base for p in pairs]))
    assert verdict.mde == pytest.approx(
        minimum_detectable_effect(60, base_rate, seeds=2, samples=4))


def test_alpha_sets_the_interval_confidence() -> None:
    pairs = _pairs(82, 0.4, 0.55, seed=3)
    loose = decide(pairs, split="heldout", alpha=0.2, n_boot=2000)
    strict = decide(pairs, split="heldout", alpha=0.01, n_boot=2000)
    assert strict.ci_low < loose.ci_low and strict.ci_high > loose.ci_high


def test_to_dict_is_json_ready() -> None:
    verdict = decide(_pairs(82, 0.4, 0.6, seeds=2), split="heldout", cost_usd=1.0, n_boot=500)
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert data["seeds"] == [0, 1] and data["label"] == verdict.label
    assert set(data) == {"label", "effect", "ci_low", "ci_high", "p_value", "split", "seeds",
                         "n_tasks", "mde", "noise_floor", "cost_per_point", "reason"}


@pytest.mark.parametrize(("pairs", "message"), [
    ([], "at least one"),
    ([SeedPair(0, [1, 0], [1, 1]), SeedPair(0, [1, 0], [0, 1])], "distinct"),
    ([SeedPair(0, [1, 0], [1, 1]), SeedPair(1, [1, 0, 1], [0, 1, 1])], "same tasks"),
    ([SeedPair(0, [1, 0], [1])], "aligned"),
    ([SeedPair(0, [], [])], "empty"),
])
def test_decide_rejects_bad_input(pairs: list[SeedPair], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide(pairs, split="heldout")
