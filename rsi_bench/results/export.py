"""Write an Analysis as ``results.json`` (schema rsi-bench/results, version 1; see SCHEMA.md),
``generations.csv`` and ``tasks.csv``.

Nothing here depends on the clock or the machine, so the same runs give byte-identical files
(DESIGN invariant 6).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsi_bench import __version__
from rsi_bench.results import compare, tables, verdicts
from rsi_bench.results.analysis import Analysis
from rsi_bench.results.safety import LEAKAGE_KINDS, MAX_LISTED

SCHEMA = "rsi-bench/results"
VERSION = 1
SPLIT_FIELDS = ("n_tasks", "score", "ci_low", "ci_high", "pass_at_k")
COMPARE_FIELDS = ("diff", "ci_low", "ci_high", "p_value", "p_holm")
CONFIG_FIELDS = ("suite", "limit", "model", "generations", "improver", "strategy", "seed",
                 "split_seed", "sealed", "samples")


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf/NA to None, recursively."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN, or an MDE of inf (no gain detectable): JSON has no such numbers
    return value


def results_dict(analysis: Analysis) -> dict[str, Any]:
    """The whole analysis as one JSON-ready dict (see SCHEMA.md)."""
    first = next(iter(analysis.runs.values()))
    return clean({
        "schema": SCHEMA,
        "version": VERSION,
        "generator": f"rsi-bench {__version__}",
        "settings": {
            "confidence": tables.CONFIDENCE, "alpha": verdicts.ALPHA,
            "n_boot_generation": compare.N_BOOT_GENERATION,
            "n_boot_verdict": verdicts.N_BOOT_VERDICT, "bootstrap_seed": compare.BOOT_SEED,
            "noise_floor_quantile": verdicts.NOISE_QUANTILE,
            "selection": "best dev score, ties to the earliest generation",
            "leakage_kinds": list(LEAKAGE_KINDS), "max_listed_findings": MAX_LISTED,
        },
        "suite": {k: first.config.get(k) for k in ("suite", "limit", "split_seed", "sealed")},
        "model": first.model,
        "simulated": any(r.simulated for r in analysis.runs.values()),
        "synthetic": any(r.synthetic for r in analysis.runs.values()),
        "conditions": [_condition(analysis, cond, members)
                       for cond, members in analysis.conditions.items()],
        "noise_floor": None if analysis.noise_floor is None else {
            "source": verdicts.CONTROL, "split": "heldout", "gains": analysis.noise_gains,
            "value": analysis.noise_floor},
        "runs": [_run(analysis, run_id) for run_id in analysis.runs],
        "notes": analysis.notes,
    })


def _condition(analysis: Analysis, condition: str, members: list[str]) -> dict[str, Any]:
    return {"condition": condition, "runs": members,
            "seeds": [analysis.runs[m].seed for m in members],
            "verdict": analysis.condition_verdicts[condition].to_dict()}


def _run(analysis: Analysis, run_id: str) -> dict[str, Any]:
    run = analysis.runs[run_id]
    gens = analysis.generations[analysis.generations["run"] == run_id]
    trend = analysis.trends[analysis.trends["run"] == run_id]
    return {
        "id": run_id, "path": str(run.path), "condition": run.condition, "seed": run.seed,
        "fingerprint": run.fingerprint, "simulated": run.simulated,
        "synthetic": run.synthetic,
        "config": {k: run.config.get(k) for k in CONFIG_FIELDS},
        "selection": analysis.selections[run_id].to_dict(),
        "verdict": analysis.run_verdicts[run_id].to_dict(),
        "trend": _trend(trend),
        "cost_usd": float(gens["cost_usd"].sum()),
        "cost_known": bool(gens["cost_known"].all()),
        "generations": [_generation(row) for row in gens.to_dict("records")],
        "safety": analysis.safety[run_id].to_dict(),
    }


def _trend(trend: pd.DataFrame) -> dict[str, Any] | None:
    if trend.empty or pd.isna(trend["slope"].iloc[0]):
        return None
    row = trend.iloc[0]
    return {"slope": float(row["slope"]), "intercept": float(row["intercept"]),
            "p_value": float(row["p_value"]), "n": int(row["n"])}


def _generation(row: dict[str, Any]) -> dict[str, Any]:
    scores = {split: {f: row[f"{split}_{f}"] for f in SPLIT_FIELDS}
              for split in tables.SPLITS if not pd.isna(row[f"{split}_n_tasks"])}
    versus = {against: None if pd.isna(row[f"{prefix}_diff"]) else
              {f: row[f"{prefix}_{f}"] for f in COMPARE_FIELDS}
              for against, prefix in (("gen0", "vs0"), ("parent", "vsparent"))}
    return {
        "generation": row["generation"], "parent": row["parent"], "improver": row["improver"],
        "status": row["status"], "reason": row["reason"], "commit_sha": row["commit_sha"],
        "n_findings": row["n_findings"], "selected": row["selected"], "scores": scores,
        "vs_gen0": versus["gen0"], "vs_parent": versus["parent"],
        "cost": {k: row[k] for k in ("calls", "solve_calls", "improve_calls", "input_tokens",
                                     "output_tokens", "cost_usd", "cost_known", "cache_hits",
                                     "cum_cost_usd")},
        "infra": row["infra"],
        "time": {k: None if pd.isna(row[k]) else row[k] for k in ("agent_s", "model_s")},
    }


def tasks_frame(analysis: Analysis) -> pd.DataFrame:
    """tasks.csv: one row per (run, generation, task)."""
    meta = pd.DataFrame([(run_id, r.condition, r.seed) for run_id, r in analysis.runs.items()],
                        columns=["run", "condition", "seed"])
    frame = analysis.tasks.merge(meta, on="run", how="left")
    times = [run.results.groupby(["generation", "task_id"])[["agent_s", "model_s"]]
             .sum(min_count=1).reset_index().assign(run=run_id)
             for run_id, run in analysis.runs.items() if not run.results.empty]
    if times:
        frame = frame.merge(pd.concat(times), on=["run", "generation", "task_id"], how="left")
    else:
        frame = frame.assign(agent_s=np.nan, model_s=np.nan)
    columns = ["run", "condition", "seed", "generation", "task_id", "split", "samples",
               "passes", "score", "agent_s", "model_s"]
    return frame[columns].sort_values(["run", "generation", "split", "task_id"])


def write_results(analysis: Analysis, out_dir: str | Path) -> list[Path]:
    """Write results.json, generations.csv and tasks.csv into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "generations.csv", out / "tasks.csv"]
    paths[0].write_text(json.dumps(results_dict(analysis), indent=1, allow_nan=False) + "\n")
    analysis.generations.to_csv(paths[1], index=False, float_format="%.6g")
    tasks_frame(analysis).to_csv(paths[2], index=False, float_format="%.6g")
    return paths
