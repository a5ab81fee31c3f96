"""Small statistics the judge's summaries need. The full statistics module builds on these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task: n samples, c correct (Chen et al., 2021).

    1 - C(n-c, k) / C(n, k), computed as a product so large n does not overflow.
    """
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1 (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Mapping[str, tuple[int, int]], ks: Iterable[int]) -> dict[str, float]:
    """Mean pass@k over tasks, for every k that every task has enough samples for."""
    result: dict[str, float] = {}
    if not counts:
        return result
    fewest = min(n for n, _ in counts.values())
    for k in ks:
        if k <= fewest:
            values = [pass_at_k(n, c, k) for n, c in counts.values()]
            result[f"pass@{k}"] = float(np.mean(values))
    return result
