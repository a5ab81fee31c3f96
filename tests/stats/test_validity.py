"""The verdict's error rates in simulated worlds (rsi_bench.stats.validity), with a fixed seed.

200 replications per world; the bootstrap uses fewer resamples than the default, which only
coarsens the interval's resolution: the decision rule is decide()'s own. benchmarks/
stats_validity.py runs more replications.
"""

from __future__ import annotations

import math

import pytest

from rsi_bench.stats.validity import (
    ValidityRow,
    World,
    beta_rates,
    check_validity,
    simulate_world,
    standard_worlds,
)

REPLICATIONS = 200
N_BOOT = 400


@pytest.fixture(scope="module")
def rows() -> list[ValidityRow]:
    return check_validity(replications=REPLICATIONS, seed=0, n_boot=N_BOOT)


def test_standard_worlds_cover_suite_sizes_and_seeds(rows: list[ValidityRow]) -> None:
    assert {(r.n_tasks, r.seeds) for r in rows} == {(82, 1), (82, 3), (20, 1), (20, 3)}
    assert all(r.replications == REPLICATIONS for r in rows)
    assert all(math.isfinite(r.mde) and 0 < r.mde < 1 - r.base_rate for r in rows)


def test_no_effect_is_rarely_called_improved(rows: list[ValidityRow]) -> None:
    for row in rows:
        assert row.false_improved <= 0.05, row
        assert row.false_regressed <= 0.05, row


def test_an_effect_of_the_mde_is_found_with_its_power(rows: list[ValidityRow]) -> None:
    for row in rows:
        assert row.power_at_mde >= 0.80, row


def test_best_on_dev_of_noop_generations_is_not_improved_on_heldout(
        rows: list[ValidityRow]) -> None:
    for row in rows:
        assert row.selection_false_improved <= 0.05, row
    # the selection bias is real: judged on its own dev results the same pick looks better
    assert sum(r.selection_on_dev for r in rows) > 2 * sum(
        r.selection_false_improved for r in rows)


def test_the_noise_floor_keeps_its_power() -> None:
    world = World("u-shaped n=82 seeds=3", beta_rates(82, seed=82), beta_rates(82, seed=1082), 3)
    row = simulate_world(world, replications=REPLICATIONS, seed=1, n_boot=N_BOOT,
                         noise_floor=0.15)
    assert row.mde > 0.15
    assert row.power_at_mde >= 0.80 and row.false_improved <= 0.05


def test_simulation_is_deterministic() -> None:
    world = standard_worlds()[2]
    first = simulate_world(world, replications=20, seed=3, n_boot=100)
    again = simulate_world(world, replications=20, seed=3, n_boot=100)
    assert {k: v for k, v in vars(first).items() if k != "seconds"} == \
        {k: v for k, v in vars(again).items() if k != "seconds"}
