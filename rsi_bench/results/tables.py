"""Per-task and per-generation tables over many runs, vectorised with pandas.

Every table carries a ``run`` column (the run's id in the analysis), so runs stack. A task's
score is its pass fraction over samples (pass@1); a generation's score is the mean of its
tasks' scores, so a task counts once whatever its number of samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import comb

import numpy as np
import pandas as pd

from rsi_bench import stats
from rsi_bench.results.load import RunData

SPLITS = ("dev", "heldout", "sealed")
CONFIDENCE = 0.95


def task_table(runs: Mapping[str, RunData]) -> pd.DataFrame:
    """One row per (run, generation, task): split, samples, passes, score (pass fraction)."""
    frames = []
    for run_id, run in runs.items():
        if run.results.empty:
            continue
        grouped = run.results.groupby(["generation", "task_id", "split"], sort=True)["passed"]
        frame = grouped.agg(samples="count", passes="sum").reset_index()
        frame.insert(0, "run", run_id)
        frames.append(frame)
    columns = ["run", "generation", "task_id", "split", "samples", "passes", "score"]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    table["passes"] = table["passes"].astype(int)
    table["score"] = table["passes"] / table["samples"]
    return table[columns]


def unbiased_pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """1 - C(n-c, k) / C(n, k) per task (Chen et al., 2021); NaN where n < k.

    Exact integer arithmetic, computed once per distinct (n, c): there are only a few.
    """
    out = np.full(len(n), np.nan)
    pairs = {(int(a), int(b)) for a, b in zip(n, c, strict=True)}
    lookup = {(a, b): 1.0 - comb(a - b, k) / comb(a, k) for a, b in pairs if a >= k}
    for i, (a, b) in enumerate(zip(n, c, strict=True)):
        out[i] = lookup.get((int(a), int(b)), np.nan)
    return out


def score_table(tasks: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, generation, split): n_tasks, n_samples, passes, score, Wilson CI, and
    pass@k for k = the fewest samples any task has (when that is more than one).

    The Wilson interval treats the task as the unit: successes are the summed task scores
    (fractional with several samples), out of n_tasks; samples of one task are not independent
    evidence about the agent, so this errs wide.
    """
    keys = ["run", "generation", "split"]
    columns = keys + ["n_tasks", "n_samples", "passes", "score", "ci_low", "ci_high", "k",
                      "pass_at_k"]
    if tasks.empty:
        return pd.DataFrame(columns=columns)
    grouped = tasks.groupby(keys, sort=True)
    table = grouped.agg(n_tasks=("task_id", "size"), n_samples=("samples", "sum"),
                        passes=("passes", "sum"), score=("score", "mean"),
                        k=("samples", "min")).reset_index()
    successes = grouped["score"].sum().to_numpy()
    intervals = [stats.wilson_interval(min(float(s), float(n)), int(n), CONFIDENCE)
                 for s, n in zip(successes, table["n_tasks"], strict=True)]
    table["ci_low"] = [lo for lo, _ in intervals]
    table["ci_high"] = [hi for _, hi in intervals]
    per_task_k = tasks.merge(table[keys + ["k"]], on=keys)
    per_task_k["pass_at_k"] = _pass_at_k_rows(per_task_k)
    mean_k = per_task_k.groupby(keys, sort=True)["pass_at_k"].mean().reset_index()
    table = table.merge(mean_k, on=keys, how="left")
    table.loc[table["k"] <= 1, "pass_at_k"] = np.nan
    return table[columns]


def _pass_at_k_rows(frame: pd.DataFrame) -> np.ndarray:
    out = np.full(len(frame), np.nan)
    for k, idx in frame.groupby("k").indices.items():
        if k > 1:
            out[idx] = unbiased_pass_at_k(frame["samples"].to_numpy()[idx],
                                          frame["passes"].to_numpy()[idx], int(k))
    return out


def wide_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """(run, generation) rows with ``<split>_score``, ``<split>_ci_low`` ... columns."""
    wide = scores.pivot(index=["run", "generation"], columns="split",
                        values=["n_tasks", "score", "ci_low", "ci_high", "pass_at_k"])
    wide.columns = [f"{split}_{field}" for field, split in wide.columns]
    return wide.reset_index()


def cost_table(runs: Mapping[str, RunData]) -> pd.DataFrame:
    """One row per (run, generation) with calls: cost, tokens, calls by role, cache hits.

    ``cost_usd`` sums known costs; ``cost_known`` is False when some call had no price.
    """
    frames = []
    for run_id, run in runs.items():
        calls = run.calls.dropna(subset=["generation"])
        if calls.empty:
            continue
        calls = calls.assign(solve=calls["role"] == "solve", improve=calls["role"] == "improve",
                             priced=calls["cost_usd"].notna())
        frame = calls.groupby("generation").agg(
            calls=("role", "size"), solve_calls=("solve", "sum"),
            improve_calls=("improve", "sum"), input_tokens=("input_tokens", "sum"),
            output_tokens=("output_tokens", "sum"), cost_usd=("cost_usd", "sum"),
            cost_known=("priced", "all"), cache_hits=("cache_hit", "sum")).reset_index()
        frame.insert(0, "run", run_id)
        frames.append(frame)
    columns = ["run", "generation", "calls", "solve_calls", "improve_calls", "input_tokens",
               "output_tokens", "cost_usd", "cost_known", "cache_hits"]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    table["generation"] = table["generation"].astype(int)
    return table[columns]


def infra_time_table(runs: Mapping[str, RunData]) -> pd.DataFrame:
    """One row per (run, generation): ``infra`` events (jobs that failed outside the agent and
    ran again; never a result), and the agents' own time and model time, in seconds, over the
    generation's solves and its improve (missing for stores that predate them)."""
    rows = []
    for run_id, run in runs.items():
        infra = run.events[run.events["kind"] == "infra"].dropna(subset=["generation"])
        counts = infra.groupby("generation").size().to_dict()
        res = run.results.groupby("generation")[["agent_s", "model_s"]].sum(min_count=1)
        for g in run.generations.to_dict("records"):
            gen = int(g["generation"])
            solve = res.loc[gen] if gen in res.index else None
            times = {}
            for column, improve in (("agent_s", "improve_agent_s"),
                                    ("model_s", "improve_model_s")):
                parts = [v for v in (None if solve is None else solve[column], g[improve])
                         if v is not None and not pd.isna(v)]
                times[column] = float(sum(parts)) if parts else np.nan
            rows.append({"run": run_id, "generation": gen,
                         "infra": int(counts.get(gen, 0)), **times})
    return pd.DataFrame(rows, columns=["run", "generation", "infra", "agent_s", "model_s"])


def task_matrix(tasks: pd.DataFrame, run_id: str, split: str) -> pd.DataFrame:
    """Tasks x generations of one run and split, values = task score (NaN: not scored)."""
    rows = tasks[(tasks["run"] == run_id) & (tasks["split"] == split)]
    return rows.pivot(index="task_id", columns="generation", values="score")
