"""Input checks shared by the statistics: every problem is a ValueError that names it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

# Per-task values: a list, a tuple or a numpy array (e.g. a pandas column's ``to_numpy()``)
Values: TypeAlias = Sequence[float] | npt.NDArray[Any]


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha}")


def as_vector(values: Values, name: str) -> np.ndarray:
    """A finite 1-d float array with at least one element."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def as_pair(base: Values, cand: Values, *,
            scores: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned vectors of equal, non-zero length (per-task values in [0, 1] if scores)."""
    a, b = as_vector(base, "base"), as_vector(cand, "cand")
    if a.size != b.size:
        raise ValueError(f"base and cand must be aligned by task: {a.size} != {b.size} values")
    if scores:
        for name, array in (("base", a), ("cand", b)):
            if np.any((array < 0.0) | (array > 1.0)):
                raise ValueError(f"{name} holds per-task scores, which must lie in [0, 1]")
    return a, b
