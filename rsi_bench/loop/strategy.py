"""How the parent of the next generation is chosen.

``latest``: the newest valid generation. ``greedy``: the best dev score so far (ties: the
newest). ``archive``: every valid generation stays eligible; parents are drawn with weight
proportional to (dev score + 0.05) / (1 + number of children), DGM-style: good and
little-explored agents are favoured. Only dev-split scores are ever used: held-out and sealed
results never influence selection.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

STRATEGIES = ("latest", "greedy", "archive")


@dataclass(frozen=True)
class Candidate:
    generation: int
    dev_score: float
    children: int


def choose_parent(strategy: str, candidates: list[Candidate], *, seed: int,
                  generation: int) -> int:
    """The parent for ``generation``; deterministic given the seed and the candidates."""
    if not candidates:
        raise ValueError("no valid generation to improve")
    if strategy == "latest":
        return max(c.generation for c in candidates)
    if strategy == "greedy":
        return max(candidates, key=lambda c: (c.dev_score, c.generation)).generation
    if strategy == "archive":
        digest = hashlib.sha256(f"archive:{seed}:{generation}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        weights = [(c.dev_score + 0.05) / (1 + c.children) for c in candidates]
        return rng.choices(candidates, weights=weights, k=1)[0].generation
    raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
