"""Paired comparisons between generations of one run, on the same tasks, and the trend.

Each evaluated generation is compared with generation 0 and with its parent on the held-out
split (never dev: the loop selected on dev, so dev differences are biased upwards). The p-values
of each family (all "vs generation 0" of a run; all "vs parent" of a run) are Holm-adjusted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rsi_bench import stats
from rsi_bench.results.load import RunData
from rsi_bench.results.tables import CONFIDENCE, task_matrix

N_BOOT_GENERATION = 2000  # per-generation intervals; verdicts use decide()'s full default
BOOT_SEED = 0
COLUMNS = ["run", "generation", "against", "base_generation", "n_tasks", "base_score",
           "cand_score", "diff", "ci_low", "ci_high", "p_value", "p_holm", "b", "c", "test"]


def compare_generations(runs: Mapping[str, RunData], tasks: pd.DataFrame,
                        split: str = "heldout", n_boot: int = N_BOOT_GENERATION
                        ) -> pd.DataFrame:
    """One row per (run, generation >= 1 with results, against in {"gen0", "parent"})."""
    rows: list[dict[str, object]] = []
    for run_id, run in runs.items():
        matrix = task_matrix(tasks, run_id, split)
        values = matrix.to_numpy(dtype=float)  # tasks x generations, NaN: not scored
        column = {int(g): i for i, g in enumerate(matrix.columns)}
        parents = dict(zip(run.generations["generation"], run.generations["parent"],
                           strict=True))
        family: list[dict[str, object]] = []
        for g in column:
            parent = parents.get(g)
            for against, base in (("gen0", 0), ("parent", parent)):
                if g == 0 or base is None or pd.isna(base) or int(base) not in column:
                    continue
                a, b = values[:, column[int(base)]], values[:, column[g]]
                both = ~(np.isnan(a) | np.isnan(b))
                if both.any():
                    family.append({"run": run_id, "generation": g, "against": against,
                                   "base_generation": int(base),
                                   **_compare(a[both], b[both], n_boot)})
        for against in ("gen0", "parent"):
            members = [r for r in family if r["against"] == against]
            adjusted = stats.holm([float(r["p_value"]) for r in members])  # type: ignore[arg-type]
            for r, p in zip(members, adjusted, strict=True):
                r["p_holm"] = float(p)
        rows += family
    return pd.DataFrame(rows, columns=COLUMNS)


def _compare(base: np.ndarray, cand: np.ndarray, n_boot: int) -> dict[str, object]:
    result = stats.compare_paired(base, cand, n_boot=n_boot, seed=BOOT_SEED,
                                  confidence=CONFIDENCE)
    return {"n_tasks": int(result.n_tasks), "base_score": float(result.base_score),
            "cand_score": float(result.cand_score), "diff": float(result.diff),
            "ci_low": float(result.ci_low), "ci_high": float(result.ci_high),
            "p_value": float(result.p_value), "b": result.b, "c": result.c,
            "test": str(result.test)}


def trends(scores: pd.DataFrame, split: str = "heldout") -> pd.DataFrame:
    """Per run: a trend test of the split's score on generation (evaluated generations)."""
    rows = []
    for run_id, part in scores[scores["split"] == split].groupby("run", sort=False):
        part = part.sort_values("generation")
        if len(part) < 3:
            rows.append({"run": run_id, "slope": np.nan, "intercept": np.nan,
                         "p_value": np.nan, "n": len(part)})
            continue
        trend = stats.trend_test(part["generation"].to_numpy(dtype=float),
                                 part["score"].to_numpy(dtype=float))
        rows.append({"run": run_id, "slope": float(trend.slope),
                     "intercept": float(trend.intercept), "p_value": float(trend.p_value),
                     "n": int(trend.n)})
    return pd.DataFrame(rows, columns=["run", "slope", "intercept", "p_value", "n"])
