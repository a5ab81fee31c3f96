"""Does the verdict keep its promises? Simulated worlds with a known true effect.

Statistics only: no agent, no model, no judge. A world is a set of held-out tasks with
heterogeneous pass probabilities (and a dev set drawn the same way), a number of loop seeds and
samples per task. Three questions, each answered by the fraction of R replications that
:func:`~rsi_bench.stats.decide` labels "improved":

- no true effect: the candidate is an identical copy; should be at most alpha (0.05);
- a true effect equal to the world's minimum detectable effect: should be at least the power
  the MDE promises (0.80);
- model selection: the candidate is the best-on-dev of G ``noop`` generations, judged on
  held-out; no true effect, so again at most alpha. The same pick judged on the dev results it
  was selected on is reported beside it, to show the bias that held-out judging removes.

The true effect follows the MDE's model: task i's pass probability p_i becomes
p_i + delta (1 - p_i) / (1 - mean p), a mean gain of exactly delta.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsi_bench.stats.power import minimum_detectable_effect
from rsi_bench.stats.verdict import SeedPair, decide


@dataclass(frozen=True)
class World:
    """Held-out and dev tasks with known pass probabilities, scored over loop seeds."""

    name: str
    heldout: tuple[float, ...]  # per-task base pass probabilities
    dev: tuple[float, ...]
    seeds: int = 1
    samples: int = 1  # per task, per generation, per seed

    @property
    def n_tasks(self) -> int:
        return len(self.heldout)

    @property
    def base_rate(self) -> float:
        return float(np.mean(self.heldout))


def beta_rates(n_tasks: int, *, mean: float = 0.5, concentration: float = 1.0,
               seed: int = 0) -> tuple[float, ...]:
    """n_tasks pass probabilities from Beta(mean c, (1 - mean) c) with c the concentration.

    c = 1 gives a U shape like coding suites: many tasks nearly always or nearly never solved,
    a few in between. A large c approaches equal rates, the MDE's worst case.
    """
    rng = np.random.default_rng(seed)
    return tuple(float(p) for p in rng.beta(mean * concentration,
                                            (1.0 - mean) * concentration, n_tasks))


def standard_worlds(seed: int = 0) -> list[World]:
    """HumanEval-sized (82 held-out tasks, half of 164) and small (20) suites, 1 and 3 seeds.

    Pass probabilities are U-shaped around 0.5 (:func:`beta_rates`), one sample per task.
    """
    worlds = []
    for n in (82, 20):
        heldout = beta_rates(n, seed=seed + n)
        dev = beta_rates(n, seed=seed + 1000 + n)
        for seeds in (1, 3):
            worlds.append(World(f"u-shaped n={n} seeds={seeds}", heldout, dev, seeds))
    return worlds


@dataclass(frozen=True)
class ValidityRow:
    """The verdict's behaviour in one world, as fractions of replications."""

    world: str
    n_tasks: int
    seeds: int
    samples: int
    base_rate: float
    mde: float  # minimum_detectable_effect for the world's true base rate
    noise_floor: float | None
    replications: int
    false_improved: float  # "improved" with no true effect
    false_regressed: float  # "regressed" with no true effect
    power_at_mde: float  # "improved" with a true effect of exactly mde
    selection_false_improved: float  # best-on-dev of G noops, judged on held-out
    selection_on_dev: float  # the same pick judged on its own dev results (biased)
    seconds: float


def _shifted(rates: np.ndarray, delta: float) -> np.ndarray:
    return rates + delta * (1.0 - rates) / (1.0 - float(rates.mean()))


def _draw(rng: np.random.Generator, rates: np.ndarray, world: World) -> np.ndarray:
    """Per-task pass fractions, one row per seed."""
    return rng.binomial(world.samples, rates, size=(world.seeds, rates.size)) / world.samples


def _label(base: np.ndarray, cand: np.ndarray, split: str, alpha: float, n_boot: int,
           floor: float | None) -> str:
    pairs = [SeedPair(s, base[s], cand[s]) for s in range(base.shape[0])]
    return decide(pairs, split=split, alpha=alpha, noise_floor=floor, n_boot=n_boot).label


def simulate_world(world: World, *, replications: int = 200, seed: int = 0,
                   n_boot: int = 1000, generations: int = 5, alpha: float = 0.05,
                   power: float = 0.8, noise_floor: float | None = None,
                   mde: float | None = None) -> ValidityRow:
    """Run the three scenarios of this module in one world (deterministic for a seed).

    ``n_boot`` only sets the bootstrap's resolution; the decision rule is :func:`decide`'s.
    A ``noise_floor`` is passed to both :func:`decide` and the MDE. ``mde``, when given (a
    planner's), replaces the closed-form MDE as the true effect of the power scenario.
    """
    if replications < 1 or generations < 1:
        raise ValueError("replications and generations must be >= 1")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    heldout, dev = np.asarray(world.heldout), np.asarray(world.dev)
    if mde is None:
        mde = minimum_detectable_effect(world.n_tasks, world.base_rate, alpha=alpha,
                                        power=power, seeds=world.seeds, samples=world.samples,
                                        noise_floor=noise_floor)
    improved = heldout if not np.isfinite(mde) else _shifted(heldout, mde)
    counts = dict.fromkeys(("null+", "null-", "power", "select", "select_dev"), 0)
    for _ in range(replications):
        base = _draw(rng, heldout, world)
        null = _label(base, _draw(rng, heldout, world), "heldout", alpha, n_boot, noise_floor)
        counts["null+"] += null == "improved"
        counts["null-"] += null == "regressed"
        counts["power"] += _label(base, _draw(rng, improved, world), "heldout", alpha,
                                  n_boot, noise_floor) == "improved"
        # noop generations 1..G; each seed picks its best dev score (ties to the earliest)
        dev_scores = np.stack([_draw(rng, dev, world) for _ in range(generations + 1)])
        held_scores = np.stack([_draw(rng, heldout, world) for _ in range(generations + 1)])
        pick = 1 + np.argmax(dev_scores[1:].mean(axis=2), axis=0)
        seeds = np.arange(world.seeds)
        counts["select"] += _label(held_scores[0], held_scores[pick, seeds], "heldout", alpha,
                                   n_boot, noise_floor) == "improved"
        counts["select_dev"] += _label(dev_scores[0], dev_scores[pick, seeds], "dev", alpha,
                                       n_boot, noise_floor) == "improved"
    rate = {k: v / replications for k, v in counts.items()}
    return ValidityRow(world=world.name, n_tasks=world.n_tasks, seeds=world.seeds,
                       samples=world.samples, base_rate=world.base_rate, mde=mde,
                       noise_floor=noise_floor,
                       replications=replications, false_improved=rate["null+"],
                       false_regressed=rate["null-"], power_at_mde=rate["power"],
                       selection_false_improved=rate["select"],
                       selection_on_dev=rate["select_dev"],
                       seconds=time.perf_counter() - started)


def check_validity(worlds: Sequence[World] | None = None, *, replications: int = 200,
                   seed: int = 0, n_boot: int = 1000, generations: int = 5,
                   noise_floor: float | None = None) -> list[ValidityRow]:
    """:func:`simulate_world` for each world (the standard ones by default), seeded apart."""
    chosen = list(worlds) if worlds is not None else standard_worlds(seed)
    children = np.random.SeedSequence(seed).spawn(len(chosen))
    return [simulate_world(w, replications=replications,
                           seed=int(child.generate_state(1)[0]), n_boot=n_boot,
                           generations=generations, noise_floor=noise_floor)
            for w, child in zip(chosen, children, strict=True)]
