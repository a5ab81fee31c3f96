"""Multiple comparisons: Holm's step-down adjustment (Holm, 1979)."""

from __future__ import annotations

import numpy as np

from rsi_bench.stats._checks import Values


def holm(p_values: Values) -> list[float]:
    """Holm-adjusted p-values, in the order given (Holm, 1979).

    Sorted ascending, the i-th smallest of m p-values (i from 1) becomes (m - i + 1) p_(i),
    made non-decreasing by a running maximum and capped at 1. Rejecting every hypothesis whose
    adjusted p is below alpha controls the family-wise error rate at alpha under any dependence
    between the tests, e.g. every generation compared with the same generation 0. Same as
    ``statsmodels`` ``multipletests(p, method="holm")[1]``. An empty family gives ``[]``.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    if p.size == 0:
        return []
    if np.any(np.isnan(p)) or np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("p_values must all lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1))
    adjusted = np.empty(p.size)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(v) for v in adjusted]
