"""The loop's sampling: which seed (or draw) a call is made with, fixed by the host.

Every generation, and every sample of a task, gets its own sampling seed derived from the loop
seed; a model that takes no seed (Anthropic's) gets its own *draw* instead (see
``CallContext.draw``): the request is sent as is, but cached and recorded as a separate one.
Without this an identical copy of an agent (the ``noop`` control) would get its parent's answers
again: no sampling noise at all, which is the very thing the control measures. Within one
generation and sample the seed is fixed, so a resumed run asks the same requests again and
gets them from the cache instead of paying twice.

Nothing inside a container can choose the seed a model is sent. A ``seed`` the agent passes is
kept in its request (recorded, and part of the request hash through the seed it leads to) but
only *mixes into* the loop's: the model is sent ``sampling_seed(loop, generation, sample,
asked)``. An agent can still ask for several independent draws (seed 1, 2, 3 ...), but a
hard-coded seed does not make two generations' draws the same, and no seed it passes reproduces
the loop's seed of another generation or sample short of a search over 2^31 SHA-256 preimages,
which would gain it nothing: the cache is keyed by the caller's binding
(``rsi_bench.models.base.binding_key``), not by the seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rsi_bench.models.base import CallContext

SEEDED_PROVIDERS = ("simulated", "local", "openai")  # models that take a sampling seed


def sampling_seed(loop_seed: int, generation: int | None, sample: int = 0,
                  asked: Any = None) -> int:
    """A 31-bit seed. ``asked`` is a seed the agent passed; without one the seed is the one the
    loop has always used for this generation and sample (recorded runs replay unchanged)."""
    key = f"rsi-bench:{loop_seed}:{generation}" + (f":{sample}" if sample else "")
    if asked is not None:
        key += ":agent:" + json.dumps(asked, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


@dataclass(frozen=True)
class Sampling:
    """``seeded``: the model takes a ``seed`` parameter (else each draw is a cache key only)."""

    loop_seed: int
    seeded: bool

    def apply(self, params: Mapping[str, Any], context: CallContext
              ) -> tuple[dict[str, Any], str | None, Any]:
        """What the model is sent for the agent's ``params``: ``(params, draw, asked)``, where
        ``asked`` is the agent's own seed when the loop's replaced it (for the record)."""
        sent = dict(params)
        if self.seeded:
            asked = sent.pop("seed", None)
            sent["seed"] = sampling_seed(self.loop_seed, context.generation, context.sample,
                                         asked)
            return sent, context.draw, asked
        if context.generation is None or context.draw is not None:
            return sent, context.draw, None
        return sent, (f"loop seed {self.loop_seed}, generation {context.generation}, "
                      f"sample {context.sample}"), None
