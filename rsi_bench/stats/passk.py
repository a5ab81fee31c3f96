"""pass@k: the probability that at least one of k samples passes (Chen et al., 2021)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task from n samples of which c passed (Chen et al., 2021).

    The estimator is ``1 - C(n-c, k) / C(n, k)``, computed as a product so that large n does
    not overflow. It is only defined for ``1 <= k <= n``: with fewer samples than k there is
    no unbiased estimate, so that is an error rather than a guess.
    """
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Mapping[str, tuple[int, int]], ks: Iterable[int]) -> dict[str, float]:
    """Mean pass@k over tasks (``{task: (n, c)}``), for every k that every task has n >= k for.

    Keys are ``"pass@k"``; a k larger than the fewest samples of any task is left out.
    """
    result: dict[str, float] = {}
    if not counts:
        return result
    fewest = min(n for n, _ in counts.values())
    for k in ks:
        if k <= fewest:
            values = [pass_at_k(n, c, k) for n, c in counts.values()]
            result[f"pass@{k}"] = float(np.mean(values))
    return result
