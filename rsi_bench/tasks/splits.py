"""Deterministic assignment of tasks to splits (dev / heldout / sealed).

Tasks are ranked by sha256(f"{seed}:{task_id}"), which is the same on every machine and
Python version (``hash()`` is salted per process), and the ranking is cut into consecutive
blocks whose sizes follow the fractions exactly: each split but the last gets
round-half-up(fraction * n) tasks (never more than are left) and the last split gets the rest.
Splits are always cut in the order dev, heldout, sealed, whatever the order of the mapping.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from fractions import Fraction

from rsi_bench.errors import SuiteError

SPLITS = ("dev", "heldout", "sealed")
DEFAULT_FRACTIONS: Mapping[str, float] = {"dev": 0.5, "heldout": 0.5}


def rank_key(task_id: str, seed: int) -> str:
    """The hash that orders tasks for ``seed``."""
    return hashlib.sha256(f"{seed}:{task_id}".encode()).hexdigest()


def split_sizes(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """How many of ``n`` tasks each split gets; the sizes sum to ``n`` exactly."""
    _check_fractions(fractions)
    sizes: dict[str, int] = {}
    left = n
    names = [name for name in SPLITS if name in fractions]  # canonical order, not dict order
    for name in names[:-1]:
        # Fraction(repr(x)) is the decimal the user wrote (0.15 -> 3/20), so 0.15 * 10 rounds
        # to 2, not to 1 as the binary float 0.1499... would.
        size = min(left, math.floor(Fraction(repr(fractions[name])) * n + Fraction(1, 2)))
        sizes[name] = size
        left -= size
    sizes[names[-1]] = left
    return sizes


def assign_splits(
    task_ids: Iterable[str], seed: int = 0, fractions: Mapping[str, float] | None = None
) -> dict[str, str]:
    """Map every task id to its split, in the order the ids were given."""
    fractions = DEFAULT_FRACTIONS if fractions is None else fractions
    ids = list(task_ids)
    if len(set(ids)) != len(ids):
        raise SuiteError("split assignment: task ids are not unique")
    ranked = sorted(ids, key=lambda task_id: (rank_key(task_id, seed), task_id))
    by_id: dict[str, str] = {}
    start = 0
    for name, size in split_sizes(len(ids), fractions).items():
        for task_id in ranked[start : start + size]:
            by_id[task_id] = name
        start += size
    return {task_id: by_id[task_id] for task_id in ids}


def split_of(
    task_id: str,
    task_ids: Iterable[str],
    seed: int = 0,
    fractions: Mapping[str, float] | None = None,
) -> str:
    """The split of one task among ``task_ids`` (sizes depend on the whole set)."""
    assignment = assign_splits(task_ids, seed, fractions)
    if task_id not in assignment:
        raise SuiteError(f"split assignment: unknown task id {task_id!r}")
    return assignment[task_id]


def ids_in_split(assignment: Mapping[str, str], split: str) -> list[str]:
    """The task ids assigned to ``split``, in the assignment's order."""
    return [task_id for task_id, name in assignment.items() if name == split]


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise SuiteError("split fractions: at least one split is needed")
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise SuiteError(f"split fractions: unknown split(s) {unknown} (known: {list(SPLITS)})")
    for name, value in fractions.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise SuiteError(f"split fractions: {name!r} must be a number in [0, 1]")
    total = math.fsum(fractions.values())
    if abs(total - 1) > 1e-9:
        raise SuiteError(f"split fractions must sum to 1, not {total:g}")
