"""Which generation a run selected, and the verdicts: per run and per condition (pooled seeds).

Selection uses dev scores only (best dev score, ties to the earliest generation). The claim is
then judged on data selection never saw: the sealed split when the run scored it on generation
0 and on its selected generation, otherwise the held-out split. The noise floor is the spread
of apparent held-out gains of the ``noop`` control, whose true gain is zero by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from rsi_bench import stats
from rsi_bench.errors import InputError
from rsi_bench.results.load import RunData
from rsi_bench.results.tables import task_matrix

ALPHA = 0.05
NOISE_QUANTILE = 0.95
CONTROL = "noop"
N_BOOT_VERDICT = 10_000  # never reduced: the verdict is the number people quote
VERDICT_SEED = 0


@dataclass(frozen=True)
class Selection:
    """A run's selected generation and what the claim about it is judged on."""

    run: str
    selected: int  # best dev score, ties to the earliest
    sealed_generation: int | None  # scored on sealed besides generation 0 (the loop's pick)
    split: str  # the claim's split: "sealed" or "heldout"
    claim_generation: int  # compared with generation 0 on ``split``
    dev_gain: float  # dev score of selected minus generation 0
    heldout_gain: float  # held-out score of selected minus generation 0
    gap: float  # dev_gain - heldout_gain: how much selection flattered the dev score
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerdictRecord:
    """stats.Verdict's fields, plus who it is about; JSON-ready."""

    subject: str  # a run id or a condition name
    condition: str
    label: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    split: str
    seeds: list[int]
    n_tasks: int
    mde: float | None  # None: no gain is reliably detectable with this setup
    noise_floor: float | None
    cost_usd: float | None
    cost_per_point: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _score(scores: pd.DataFrame, run_id: str, split: str) -> dict[int, float]:
    part = scores[(scores["run"] == run_id) & (scores["split"] == split)]
    return dict(zip(part["generation"].astype(int), part["score"].astype(float), strict=True))


def select(run_id: str, run: RunData, scores: pd.DataFrame) -> Selection:
    """The run's selected generation: the best dev score among fully evaluated generations
    (a generation still being evaluated in a live run cannot be selected), ties to the
    earliest."""
    dev, held = _score(scores, run_id, "dev"), _score(scores, run_id, "heldout")
    sealed = _score(scores, run_id, "sealed")
    if 0 not in held:
        raise InputError(f"{run.path}: generation 0 has no held-out results yet, so there is "
                         "nothing to compare with")
    gens = run.generations
    evaluated = set(gens.loc[gens["status"] == "evaluated", "generation"].astype(int))
    eligible = {g: score for g, score in dev.items() if g in evaluated} or {0: dev.get(0, 0)}
    selected = min(eligible, key=lambda g: (-eligible[g], g))
    others = sorted(set(sealed) - {0})
    note, sealed_gen = None, (others[-1] if others else None)
    if 0 in sealed and selected in sealed:
        split, claim, sealed_gen = "sealed", selected, selected
    elif 0 in sealed and sealed_gen is not None:
        split, claim = "sealed", sealed_gen
        note = (f"the loop scored generation {sealed_gen} on the sealed split; the best dev "
                f"score (ties to the earliest) is generation {selected}")
    else:
        split, claim = "heldout", selected
        if sealed:
            note = ("the sealed split was not scored on both generation 0 and the selected "
                    "generation, so the claim uses held-out")
    dev_gain = dev.get(selected, np.nan) - dev.get(0, np.nan)
    held_gain = held.get(selected, np.nan) - held.get(0, np.nan)
    return Selection(run_id, selected, sealed_gen, split, claim, float(dev_gain),
                     float(held_gain), float(dev_gain - held_gain), note)


def noise_floor(selections: Mapping[str, Selection], runs: Mapping[str, RunData]
                ) -> tuple[float | None, list[float]]:
    """The noise floor from the control runs' apparent held-out gains (None without any)."""
    gains = [s.heldout_gain for run_id, s in selections.items()
             if runs[run_id].condition == CONTROL and not np.isnan(s.heldout_gain)]
    if not gains:
        return None, []
    return float(stats.noise_floor(gains, quantile=NOISE_QUANTILE)), gains


def run_cost(run: RunData) -> float | None:
    costs = run.calls["cost_usd"]
    return float(costs.sum()) if costs.notna().any() else None


def decide_group(subject: str, condition: str, members: Sequence[str],
                 runs: Mapping[str, RunData], tasks: pd.DataFrame,
                 selections: Mapping[str, Selection], floor: float | None) -> VerdictRecord:
    """decide() over the given runs (one per seed) of one condition."""
    # One split for every seed: sealed only if each run has a sealed claim.
    split = "sealed" if all(selections[m].split == "sealed" for m in members) else "heldout"
    pairs = []
    matrices = {}
    for m in members:
        gen = selections[m].claim_generation if split == "sealed" else selections[m].selected
        matrices[m] = task_matrix(tasks, m, split)[[0, gen]].dropna()
    # every seed must be paired on the same tasks, in the same order
    common = sorted(set.intersection(*(set(x.index) for x in matrices.values())))
    for m in members:
        aligned = matrices[m].loc[common].to_numpy(dtype=float)
        pairs.append(stats.SeedPair(runs[m].seed, aligned[:, 0], aligned[:, 1]))
    costs = [c for c in (run_cost(runs[m]) for m in members) if c is not None]
    cost = float(np.mean(costs)) if costs else None
    control = condition == CONTROL
    verdict = stats.decide(pairs, split=split, alpha=ALPHA,
                           noise_floor=None if control else floor, cost_usd=cost,
                           n_boot=N_BOOT_VERDICT, seed=VERDICT_SEED)
    return VerdictRecord(
        subject=subject, condition=condition, label=str(verdict.label),
        effect=float(verdict.effect), ci_low=float(verdict.ci_low),
        ci_high=float(verdict.ci_high), p_value=float(verdict.p_value),
        split=str(verdict.split), seeds=[int(s) for s in verdict.seeds],
        n_tasks=int(verdict.n_tasks), mde=_opt(verdict.mde),
        noise_floor=_opt(verdict.noise_floor), cost_usd=cost,
        cost_per_point=_opt(verdict.cost_per_point), reason=str(verdict.reason))


def _opt(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None
