"""From loaded runs to every number the report shows: ``analyze(runs) -> Analysis``.

Runs are grouped into conditions by their improver (``self``, ``fixed``, ``noop``) and told
apart within a condition by their loop seed. Runs can only be analysed together when they share
the suite, its slice, the split seed, the sealed fraction and the model: otherwise "the same
task" or "the same condition" would mean different things across runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rsi_bench.errors import InputError
from rsi_bench.results import compare, tables, verdicts
from rsi_bench.results.load import RunData, load_run
from rsi_bench.results.safety import SafetyCard, safety_card

POOL_KEYS = ("suite", "limit", "split_seed", "sealed", "model")
CONDITION_ORDER = ("self", "fixed", "noop")


@dataclass(frozen=True, eq=False)
class Analysis:
    """Tables (pandas) and per-run / per-condition records; ``runs`` maps run id -> RunData."""

    runs: dict[str, RunData]
    tasks: pd.DataFrame  # run, generation, task_id, split, samples, passes, score
    scores: pd.DataFrame  # run, generation, split, n_tasks, ..., score, ci_low, ci_high
    costs: pd.DataFrame  # run, generation, calls, tokens, cost_usd
    comparisons: pd.DataFrame  # run, generation, against (gen0 | parent), diff, CI, p, p_holm
    trends: pd.DataFrame  # run, slope, intercept, p_value, n (held-out score on generation)
    generations: pd.DataFrame  # one row per (run, generation): everything above joined
    selections: dict[str, verdicts.Selection]
    run_verdicts: dict[str, verdicts.VerdictRecord]
    condition_verdicts: dict[str, verdicts.VerdictRecord]
    noise_floor: float | None
    noise_gains: list[float]
    safety: dict[str, SafetyCard]
    notes: list[str] = field(default_factory=list)

    @property
    def conditions(self) -> dict[str, list[str]]:
        """Condition -> its run ids, in canonical order (self, fixed, noop, others)."""
        return group_conditions(self.runs)


def group_conditions(runs: Mapping[str, RunData]) -> dict[str, list[str]]:
    """Condition -> run ids (in the order of ``runs``, which index_runs sorts)."""
    groups: dict[str, list[str]] = {}
    for run_id, run in runs.items():
        groups.setdefault(run.condition, []).append(run_id)
    return groups


def index_runs(runs: Iterable[RunData | str | Path]) -> dict[str, RunData]:
    """Load what needs loading, check the runs can be pooled, and name them ``<cond>-s<seed>``."""
    loaded = [r if isinstance(r, RunData) else load_run(r) for r in runs]
    if not loaded:
        raise InputError("no runs given")
    first = loaded[0]
    for run in loaded[1:]:
        for key in POOL_KEYS:
            if run.config.get(key) != first.config.get(key):
                raise InputError(f"cannot analyse {first.path} and {run.path} together: they "
                                 f"differ in {key} ({first.config.get(key)!r} vs "
                                 f"{run.config.get(key)!r})")
    out: dict[str, RunData] = {}
    for run in loaded:
        run_id = f"{run.condition}-s{run.seed}"
        if run_id in out:
            raise InputError(f"{out[run_id].path} and {run.path} are both condition "
                             f"{run.condition!r} with seed {run.seed}: give one run per seed")
        out[run_id] = run
    rank = {c: i for i, c in enumerate(CONDITION_ORDER)}
    order = sorted(out, key=lambda k: (rank.get(out[k].condition, len(rank)),
                                       out[k].condition, out[k].seed))
    return {k: out[k] for k in order}


def analyze(runs: Iterable[RunData | str | Path], *,
            n_boot_generation: int = compare.N_BOOT_GENERATION) -> Analysis:
    """Every table and verdict for the given runs (RunData or run directories)."""
    indexed = index_runs(runs)
    task_rows = tables.task_table(indexed)
    scores = tables.score_table(task_rows)
    costs = tables.cost_table(indexed)
    comparisons = compare.compare_generations(indexed, task_rows, n_boot=n_boot_generation)
    trend = compare.trends(scores)
    selections = {run_id: verdicts.select(run_id, run, scores)
                  for run_id, run in indexed.items()}
    floor, gains = verdicts.noise_floor(selections, indexed)
    groups = group_conditions(indexed)
    run_verdicts = {run_id: verdicts.decide_group(run_id, run.condition, [run_id], indexed,
                                                  task_rows, selections, floor)
                    for run_id, run in indexed.items()}
    condition_verdicts = {cond: verdicts.decide_group(cond, cond, members, indexed, task_rows,
                                                      selections, floor)
                          for cond, members in groups.items()}
    safety = {run_id: safety_card(run_id, run, selections[run_id].gap)
              for run_id, run in indexed.items()}
    notes = [f"{run_id}: {s.note}" for run_id, s in selections.items() if s.note]
    if floor is None:
        notes.append("no noop control among these runs: verdicts have no noise floor")
    generations = joined_generations(indexed, scores, costs, comparisons, selections)
    return Analysis(indexed, task_rows, scores, costs, comparisons, trend, generations,
                    selections, run_verdicts, condition_verdicts, floor, gains, safety, notes)


def joined_generations(runs: Mapping[str, RunData], scores: pd.DataFrame, costs: pd.DataFrame,
                       comparisons: pd.DataFrame,
                       selections: Mapping[str, verdicts.Selection]) -> pd.DataFrame:
    """One row per (run, generation): lineage, scores per split, comparisons, cost."""
    frames = []
    for run_id, run in runs.items():
        gens = run.generations.drop(columns=["created_at", "evaluated_at"]).copy()
        gens.insert(0, "run", run_id)
        gens.insert(1, "condition", run.condition)
        gens.insert(2, "seed", run.seed)
        gens["selected"] = gens["generation"] == selections[run_id].selected
        frames.append(gens)
    table = pd.concat(frames, ignore_index=True)
    wide = tables.wide_scores(scores) if not scores.empty else None
    if wide is not None:
        table = table.merge(wide, on=["run", "generation"], how="left")
    score_columns = [f"{split}_{column}" for split in tables.SPLITS
                     for column in ("n_tasks", "score", "ci_low", "ci_high", "pass_at_k")]
    for column in score_columns:
        if column not in table:
            table[column] = np.nan
    table = table[[c for c in table.columns if c not in score_columns] + score_columns]
    for split in tables.SPLITS:
        table[f"{split}_n_tasks"] = table[f"{split}_n_tasks"].astype("Int64")
    table["dev_minus_heldout"] = table["dev_score"] - table["heldout_score"]
    for against, prefix in (("gen0", "vs0"), ("parent", "vsparent")):
        part = comparisons[comparisons["against"] == against]
        part = part[["run", "generation", "diff", "ci_low", "ci_high", "p_value", "p_holm"]]
        part = part.rename(columns={c: f"{prefix}_{c}" for c in
                                    ("diff", "ci_low", "ci_high", "p_value", "p_holm")})
        table = table.merge(part, on=["run", "generation"], how="left")
    table = table.merge(costs, on=["run", "generation"], how="left")
    for column in ("calls", "solve_calls", "improve_calls", "input_tokens", "output_tokens",
                   "cache_hits"):
        table[column] = table[column].fillna(0).astype(int)
    table["cost_usd"] = pd.to_numeric(table["cost_usd"]).astype(float).fillna(0.0)
    table["cost_known"] = table["cost_known"].astype("boolean").fillna(True).astype(bool)
    table["cum_cost_usd"] = table.groupby("run")["cost_usd"].cumsum()
    table = table.drop(columns=["improve_agent_s", "improve_model_s"], errors="ignore")
    table = table.merge(tables.infra_time_table(runs), on=["run", "generation"], how="left")
    table["infra"] = table["infra"].fillna(0).astype(int)
    return table
