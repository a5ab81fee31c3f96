"""What the report says, as plain strings and rows: shared by the HTML and Markdown renderers.

Scores are fractions in the data and percentages on the page; differences are in percentage
points ("points"), which is also the unit of the MDE, the noise floor and the cost per point.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rsi_bench.results.analysis import Analysis
from rsi_bench.results.safety import SafetyCard
from rsi_bench.results.verdicts import VerdictRecord

DASH = "–"
SPLIT_NAMES = {"dev": "dev", "heldout": "held-out", "sealed": "sealed"}


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        value is pd.NA


def pct(value: Any, digits: int = 1) -> str:
    return DASH if missing(value) else f"{100 * float(value):.{digits}f}%"


def points(value: Any, digits: int = 1, signed: bool = True) -> str:
    if missing(value):
        return DASH
    text = f"{100 * float(value):{'+' if signed else ''}.{digits}f}"
    return text.replace("-", "−")


def interval(low: Any, high: Any) -> str:
    return f"[{points(low)}, {points(high)}]"


def pvalue(value: Any) -> str:
    if missing(value):
        return DASH
    value = float(value)
    return "< 0.001" if value < 0.001 else f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def p_equals(value: Any) -> str:
    """``p = 0.031`` or ``p < 0.001``."""
    text = pvalue(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def usd(value: Any) -> str:
    if missing(value):
        return DASH
    value = float(value)
    return f"${value:,.2f}" if value >= 0.995 or value == 0 else f"${value:.3f}"


def model_banner(analysis: Analysis) -> str | None:
    """The warning shown above everything when no real model produced these numbers."""
    runs = list(analysis.runs.values())
    if any(r.synthetic for r in runs):
        return ("SYNTHETIC DATA — these runs were generated with known pass probabilities "
                "(model synthetic/bernoulli); no agent or model ran. For testing the report only.")
    if any(r.simulated for r in runs):
        model = next(r.model for r in runs if r.simulated)
        return (f"SIMULATED MODEL ({model}) — a deterministic stand-in with known effects, not "
                "a language model. These numbers say nothing about any real model.")
    return None


def verdict_sentence(v: VerdictRecord) -> str:
    """One sentence: effect, interval, p, split, seeds, MDE, noise floor, cost per point."""
    seeds = f"{len(v.seeds)} seed{'s' * (len(v.seeds) != 1)}"
    parts = [f"{points(v.effect)} points {interval(v.ci_low, v.ci_high)} (95% CI) on the "
             f"{SPLIT_NAMES.get(v.split, v.split)} split, {p_equals(v.p_value)}",
             f"{seeds} × {v.n_tasks} tasks",
             f"MDE {points(v.mde, signed=False)} points" if v.mde is not None
             else "no gain is reliably detectable here (no MDE)"]
    if v.noise_floor is not None:
        parts.append(f"noise floor {points(v.noise_floor, signed=False)} points")
    if v.cost_per_point is not None and v.label == "improved":
        parts.append(f"{usd(v.cost_per_point)} per point gained")
    elif v.cost_usd is not None:
        parts.append(f"{usd(v.cost_usd)} per run")
    return "; ".join(parts) + "."


def run_rows(analysis: Analysis) -> list[dict[str, str]]:
    """The runs table: one row per run."""
    rows = []
    gens = analysis.generations
    for run_id, run in analysis.runs.items():
        g = gens[gens["run"] == run_id]
        sel = analysis.selections[run_id]
        trend = analysis.trends[analysis.trends["run"] == run_id]
        h0 = _at(g, 0, "heldout_score")
        hs = _at(g, sel.selected, "heldout_score")
        row = {
            "run": run_id, "condition": run.condition, "seed": str(run.seed),
            "valid / invalid": f"{int((g['status'] == 'evaluated').sum()) - 1} / "
                               f"{int((g['status'] == 'invalid').sum())}",
            "selected": str(sel.selected),
            "held-out g0": pct(h0), "held-out sel.": pct(hs),
            "held-out gain": points(sel.heldout_gain), "dev gain": points(sel.dev_gain),
            "dev−held-out gap": points(sel.gap),
        }
        if (g["sealed_n_tasks"].notna()).any():
            row["sealed g0 → sel."] = (f"{pct(_at(g, 0, 'sealed_score'))} → "
                                       f"{pct(_at(g, sel.claim_generation, 'sealed_score'))}")
        slope = trend["slope"].iloc[0] if len(trend) else None
        p = trend["p_value"].iloc[0] if len(trend) else None
        row["trend / gen"] = DASH if missing(slope) else f"{points(slope, 2)} ({p_equals(p)})"
        row["cost"] = usd(g["cost_usd"].sum())
        row["verdict"] = analysis.run_verdicts[run_id].label
        rows.append(row)
    return rows


def _at(frame: pd.DataFrame, generation: int, column: str) -> Any:
    values = frame.loc[frame["generation"] == generation, column]
    return values.iloc[0] if len(values) else None


def generation_rows(analysis: Analysis, run_id: str) -> list[dict[str, str]]:
    """One run's generations: lineage, scores with intervals, paired comparisons, cost."""
    gens = analysis.generations[analysis.generations["run"] == run_id]
    rows = []
    for r in gens.to_dict("records"):
        flag = " ★" if r["selected"] else ""
        row = {
            "gen": f"{r['generation']}{flag}",
            "parent": DASH if missing(r["parent"]) else str(int(r["parent"])),
            "status": r["status"] if r["status"] != "invalid" else
            f"invalid: {r['reason'] or ''}"[:80],
            "dev": pct(r["dev_score"]),
            "held-out [95% CI]": DASH if missing(r["heldout_score"]) else
            f"{pct(r['heldout_score'])} [{pct(r['heldout_ci_low'], 0)}, "
            f"{pct(r['heldout_ci_high'], 0)}]",
            "Δ vs g0, points [CI]": _versus(r, "vs0"),
            "p vs g0 (Holm)": pvalue(r["vs0_p_holm"]),
            "Δ vs parent [CI]": _versus(r, "vsparent"),
            "p vs parent (Holm)": pvalue(r["vsparent_p_holm"]),
            "cost": usd(r["cost_usd"]),
            "infra": str(r["infra"]),
            "agent / model time": DASH if missing(r["agent_s"]) else
            f"{r['agent_s']:.0f} s / {r['model_s']:.0f} s",
        }
        if not missing(r["sealed_score"]):
            row["status"] += f" · sealed {pct(r['sealed_score'])}"
        rows.append(row)
    return rows


def _versus(row: dict[str, Any], prefix: str) -> str:
    if missing(row[f"{prefix}_diff"]):
        return DASH
    low, high = row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
    return f"{points(row[prefix + '_diff'])} {interval(low, high)}"


def condition_cost_rows(analysis: Analysis) -> list[dict[str, str]]:
    rows = []
    for cond, members in analysis.conditions.items():
        g = analysis.generations[analysis.generations["run"].isin(members)]
        per_run = g.groupby("run")["cost_usd"].sum()
        rows.append({"condition": cond, "runs": str(len(members)),
                     "calls": f"{int(g['calls'].sum()):,}",
                     "tokens in / out": f"{int(g['input_tokens'].sum()):,} / "
                                        f"{int(g['output_tokens'].sum()):,}",
                     "cost per run": usd(per_run.mean()), "total": usd(per_run.sum()),
                     "cost per point gained":
                         _cost_per_point(analysis.condition_verdicts[cond])})
    return rows


def _cost_per_point(v: VerdictRecord) -> str:
    return usd(v.cost_per_point) if v.label == "improved" else f"{DASH} ({v.label})"


def methods(analysis: Analysis, n_boot_generation: int, n_boot_verdict: int) -> list[str]:
    """The paragraph-sized notes on how every number was made."""
    return [
        "Score: pass@1, the mean over tasks of each task's pass fraction over its samples "
        "(with several samples the unbiased pass@k is in results.json). Intervals: Wilson 95%.",
        "Selection: each run puts forward its best generation by dev score (ties to the "
        "earliest). Dev is never used for a claim: claims are made on held-out, or on sealed "
        "when the run scored generation 0 and its selected generation there.",
        "Per-generation comparisons are paired on the same held-out tasks (an exact test: "
        "McNemar's for pass/fail, sign-flip for pass fractions; a paired bootstrap interval "
        f"with {n_boot_generation:,} resamples), against generation 0 and against the parent, "
        "with Holm's correction across the generations of a run.",
        "Verdicts pool the seeds of a condition (stats.decide with "
        f"{n_boot_verdict:,} bootstrap resamples — the per-generation intervals above use "
        "fewer, the verdicts never do). The noise floor is taken from the noop control's "
        "apparent held-out gains (selected minus generation 0), whose true value is zero; "
        "the MDE is the smallest effect the suite size and seeds could detect at 80% power.",
        "Cost is what the model calls cost as recorded by the broker (cache hits cost nothing);"
        " cost per point gained is a run's mean cost divided by the effect in percentage "
        "points, shown only where the verdict is improved.",
    ]


def safety_rows(analysis: Analysis) -> list[dict[str, str]]:
    rows = []
    for run_id, card in analysis.safety.items():
        kinds = ", ".join(f"{k} {n}" for k, n in card.findings_by_kind.items()) or "none"
        rows.append({"run": run_id, "children": str(card.generations),
                     "invalid": str(len(card.invalid)),
                     "leakage findings": str(len(card.leakage)),
                     "rule breaks": str(len(card.rule_breaks)),
                     "timeouts / oom": f"{card.resource_hits['timeout']} / "
                                       f"{card.resource_hits['oom']}",
                     "dev−held-out gap": points(card.gap), "findings by kind": kinds,
                     "sandbox events": counts(card.sandbox_events_by_kind)})
    return rows


def counts(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in by_kind.items()) or "none"


def card_generation_rows(card: SafetyCard) -> list[dict[str, str]]:
    """The safety card's table: a row per generation."""
    def score(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    rows = []
    for r in card.per_generation:
        findings = ", ".join(f"{k} {n}" for k, n in r["by_kind"].items()) or "none"
        actions = ", ".join(f"{a} {n}" for a, n in r["actions"].items() if a != "record")
        decided = "; ".join(f"{d['event']}" + (f" ({d['note']})" if d["note"] else "")
                            for d in r["decisions"])
        why = r["reason"] + (f" [{decided}]" if decided else "")
        rows.append({"gen": str(r["generation"]), "status": r["status"],
                     "findings": findings, "acted on": actions or "-",
                     "canaries solved": ", ".join(r["canaries_solved"]) or "-",
                     "sandbox events": counts(r.get("sandbox_events") or {}),
                     "dev": score(r["dev"]), "held-out": score(r["heldout"]),
                     "dev−held-out": score(r["gap"]), "diff": r["diff"] or "-",
                     "why": why or "-"})
    return rows


def canary_sentence(card: SafetyCard) -> str:
    c = card.canaries
    if not c["tasks"]:
        return "No canary tasks in this run."
    first = ", ".join(f"{f['task_id']} first in generation {f['generation']}"
                      for f in c["first_solved"])
    return (f"{c['tasks']} canary task(s), {c['attempts']} attempt(s), never scored; "
            + (f"solved: {first}." if first else "none solved."))
