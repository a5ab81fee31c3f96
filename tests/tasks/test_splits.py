"""Split assignment: deterministic, exact sizes, and pinned so an algorithm change is caught."""

from __future__ import annotations

import pytest

from rsi_bench.errors import SuiteError
from rsi_bench.tasks.splits import (
    assign_splits,
    ids_in_split,
    rank_key,
    split_of,
    split_sizes,
)

IDS = [f"demo/{i}" for i in range(8)]


def test_rank_key_is_sha256_of_seed_and_id() -> None:
    assert rank_key("demo/0", 0) == (
        "429189d74b7781c568aee746b3288fafa0a37c3bfeb34e2aa85d41ab60798ba5"
    )


def test_assignments_are_pinned() -> None:
    assert assign_splits(IDS, 0) == {
        "demo/0": "heldout", "demo/1": "heldout", "demo/2": "heldout", "demo/3": "heldout",
        "demo/4": "dev", "demo/5": "dev", "demo/6": "dev", "demo/7": "dev",
    }
    assert assign_splits(IDS, 1) == {
        "demo/0": "heldout", "demo/1": "heldout", "demo/2": "dev", "demo/3": "dev",
        "demo/4": "heldout", "demo/5": "dev", "demo/6": "heldout", "demo/7": "dev",
    }
    with_sealed = assign_splits(IDS, 7, {"dev": 0.5, "heldout": 0.25, "sealed": 0.25})
    assert with_sealed == {
        "demo/0": "dev", "demo/1": "dev", "demo/2": "heldout", "demo/3": "heldout",
        "demo/4": "sealed", "demo/5": "dev", "demo/6": "sealed", "demo/7": "dev",
    }


def test_rsi_core_assignment_is_pinned() -> None:
    from rsi_bench.tasks import load_suite

    assignment = assign_splits([task.id for task in load_suite("rsi-core")], 0)
    assert assignment["rsi-core/chunk"] == "heldout"
    assert assignment["rsi-core/eval_arith"] == "heldout"
    assert assignment["rsi-core/median"] == "dev"
    assert assignment["rsi-core/to_base"] == "dev"


def test_assignment_is_deterministic_and_independent_of_input_order() -> None:
    ids = [f"t/{i}" for i in range(101)]
    first = assign_splits(ids, 3)
    assert assign_splits(list(reversed(ids)), 3) == first
    assert list(assign_splits(list(reversed(ids)), 3)) == list(reversed(ids))
    assert assign_splits(ids, 4) != first


@pytest.mark.parametrize("n", range(0, 41))
def test_sizes_are_exact(n: int) -> None:
    ids = [f"t/{i}" for i in range(n)]
    assignment = assign_splits(ids, 0)
    assert len(ids_in_split(assignment, "dev")) == (n + 1) // 2  # round half up
    assert len(ids_in_split(assignment, "heldout")) == n // 2
    three = assign_splits(ids, 0, {"dev": 0.6, "heldout": 0.2, "sealed": 0.2})
    sizes = split_sizes(n, {"dev": 0.6, "heldout": 0.2, "sealed": 0.2})
    assert sum(sizes.values()) == n
    for name, size in sizes.items():
        assert len(ids_in_split(three, name)) == size


def test_sizes_round_the_decimal_fraction_half_up() -> None:
    assert split_sizes(10, {"dev": 0.15, "heldout": 0.85}) == {"dev": 2, "heldout": 8}
    assert split_sizes(10, {"dev": 0.6, "heldout": 0.2, "sealed": 0.2}) == {
        "dev": 6, "heldout": 2, "sealed": 2}
    assert split_sizes(1, {"dev": 0.5, "heldout": 0.5, "sealed": 0}) == {
        "dev": 1, "heldout": 0, "sealed": 0}
    # the order of the mapping does not matter: dev, heldout, sealed is always the order
    assert split_sizes(3, {"sealed": 1 / 3, "heldout": 1 / 3, "dev": 1 / 3}) == {
        "dev": 1, "heldout": 1, "sealed": 1}


def test_split_of_agrees_with_assign_splits() -> None:
    assignment = assign_splits(IDS, 0)
    for task_id in IDS:
        assert split_of(task_id, IDS, 0) == assignment[task_id]
    with pytest.raises(SuiteError, match="demo/99"):
        split_of("demo/99", IDS, 0)


@pytest.mark.parametrize(
    "fractions",
    [{}, {"dev": 0.5}, {"dev": 0.7, "heldout": 0.7}, {"dev": 1.5, "heldout": -0.5},
     {"dev": 0.5, "test": 0.5}, {"dev": "half", "heldout": 0.5}],
)
def test_bad_fractions_are_rejected(fractions: dict) -> None:
    with pytest.raises(SuiteError, match="split"):
        assign_splits(IDS, 0, fractions)


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(SuiteError, match="unique"):
        assign_splits(["a", "a"], 0)
