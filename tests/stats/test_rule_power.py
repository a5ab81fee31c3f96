"""The verdict rule's power by simulation: label for label what decide() says."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_bench.stats import minimum_detectable_effect
from rsi_bench.stats.power import _mcnemar_power
from rsi_bench.stats.rule_power import RulePower, rule_power_hits, simulated_mde
from rsi_bench.stats.verdict import SeedPair, decide


@pytest.mark.parametrize(("seeds", "samples", "floor", "controls", "delta"), [
    (1, 1, None, 0, 0.25), (3, 1, None, 0, 0.15), (2, 2, 0.05, 0, 0.2), (3, 1, None, 3, 0.2),
    (1, 1, None, 0, 0.0)])
def test_every_replication_gets_the_label_decide_gives(seeds: int, samples: int,
                                                       floor: float | None, controls: int,
                                                       delta: float) -> None:
    rates = np.random.default_rng(1).beta(1, 1, 30)
    sim = RulePower(rates, seeds=seeds, samples=samples, noise_floor=floor,
                    control_seeds=controls, replications=80, seed=3)
    labels = sim.improved(delta)
    cand = sim.candidate_units(delta)
    grid = seeds * samples
    for r in range(80):
        # decide() pools seeds by averaging; the pooled fractions are what it tests
        pair = SeedPair(0, sim.base_units[r] / grid, cand[r] / grid)
        expected = decide([pair], split="heldout", noise_floor=float(sim.bar[r])).label
        assert labels[r] == (expected == "improved"), r
    assert 0 < labels.sum() < 80 or delta == 0.0  # the cases decide, not all one way


def test_a_larger_gain_never_turns_a_pass_into_a_fail() -> None:
    sim = RulePower(np.full(20, 0.4), seeds=2, replications=50, seed=0)
    small, large = sim.candidate_units(0.1), sim.candidate_units(0.3)
    assert np.all(large >= small) and large.sum() > small.sum()


def test_simulated_mde_has_at_least_the_power_it_promises_where_power_is_exact() -> None:
    # One seed, one sample, equal rates: McNemar's power is exact (rsi_bench.stats.power). The
    # simulated MDE asks that the simulation's lower 95% bound reach 0.80, so its exact power
    # is at least 0.80 and it exceeds the test-only MDE by the simulation's margin only: with
    # 1000 replications that margin is about 1.96 * 0.0126 = 0.025 in power, a few points of
    # gain at 30 tasks (the power rises about 0.03 per point here).
    exact = minimum_detectable_effect(30, 0.5)
    simulated = simulated_mde(np.full(30, 0.5), replications=1000, seed=0)
    assert _mcnemar_power(30, 0.5, simulated, 0.05, 0.0) >= 0.8
    assert exact <= simulated <= exact + 0.03


def test_simulated_mde_is_deterministic_and_grows_with_a_floor() -> None:
    rates = np.full(40, 0.5)
    first = simulated_mde(rates, seeds=2, replications=300, seed=5)
    assert simulated_mde(rates, seeds=2, replications=300, seed=5) == first
    # a floor below the test's own MDE does not bind; one above it does
    assert simulated_mde(rates, seeds=2, replications=300, seed=5, noise_floor=0.1) == first
    assert simulated_mde(rates, seeds=2, replications=300, seed=5, noise_floor=0.3) > 0.3
    assert simulated_mde(rates, seeds=2, replications=300, seed=5, control_seeds=2) > first


def test_no_headroom_means_no_detectable_gain() -> None:
    assert simulated_mde(np.ones(10), replications=200) == float("inf")
    with pytest.raises(ValueError):
        RulePower(np.array([0.5, 1.5]))


def test_many_replications_are_independent_chunks_of_the_same_rule() -> None:
    rates = np.full(30, 0.5)
    hits, total = rule_power_hits(rates, 0.25, replications=250, chunk=100, seed=4)
    assert total == 250
    children = np.random.SeedSequence(4).spawn(3)
    expected = sum(int(RulePower(rates, replications=size, seed=int(c.generate_state(1)[0])
                                 ).improved(0.25).sum())
                   for size, c in zip((100, 100, 50), children, strict=True))
    assert hits == expected and 0 < hits < 250
    assert rule_power_hits(rates, 0.25, replications=250, chunk=100, seed=4) == (hits, 250)


def test_the_planned_mde_has_its_power_where_the_test_alone_is_exact() -> None:
    # The equal-difficulty world of 82 tasks, one seed, one sample: the planner's MDE must have
    # McNemar's exact power >= 0.80, and the whole rule (test and interval) nearly all of it:
    # the interval removes only replications the test barely rejects.
    rates = np.full(82, 0.5)
    planned = simulated_mde(rates, replications=1000, seed=0)
    exact = _mcnemar_power(82, 0.5, planned, 0.05, 0.0)
    assert exact >= 0.80
    hits, total = rule_power_hits(rates, planned, replications=2000, chunk=1000, seed=9)
    assert exact - 0.03 <= hits / total <= exact + 0.03
