"""report.md: the same report as index.html, in Markdown, with the plots linked from plots/."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rsi_bench.report import text
from rsi_bench.report.html import CAPTIONS
from rsi_bench.results.analysis import Analysis

EMOJI = {"improved": "▲", "regressed": "▼"}


def md_table(rows: Sequence[Mapping[str, str]]) -> str:
    if not rows:
        return "_nothing to show_\n"
    keys = list(rows[0])
    cell = [[str(r[k]).replace("|", "\\|") for k in keys] for r in rows]
    align = ["---" if i == 0 else "---:" for i in range(len(keys))]
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c) + " |" for c in cell]
    return "\n".join(lines) + "\n"


def _plot(name: str, title: str) -> str:
    return f"![{title}](plots/{name}.png)\n\n_{CAPTIONS[name]}_\n"


def render_markdown(analysis: Analysis, name: str, n_boot_generation: int,
                    n_boot_verdict: int) -> str:
    first = next(iter(analysis.runs.values()))
    out = [f"# rsi-bench report: {name}\n",
           f"Suite `{first.config.get('suite')}`, model `{first.model}`, split seed "
           f"{first.config.get('split_seed')}, {len(analysis.runs)} run(s) in "
           f"{len(analysis.conditions)} condition(s).\n"]
    banner = text.model_banner(analysis)
    if banner:
        out.append(f"> **{banner}**\n")
    out.append("## Verdict\n")
    for cond, v in analysis.condition_verdicts.items():
        mark = EMOJI.get(v.label, "●")
        out.append(f"- {mark} **{cond}: {v.label}** — {text.verdict_sentence(v)}  \n"
                   f"  _{v.reason}_")
    out.append("")
    out += [f"- note: {n}" for n in analysis.notes]
    out += ["", "## Runs\n", md_table(text.run_rows(analysis)),
            "## Score per generation\n", _plot("score_per_generation", "score per generation"),
            "## Dev vs held-out\n", _plot("dev_vs_heldout", "dev vs held-out"),
            "## Lineage\n", _plot("lineage", "lineage"),
            "## Cost\n", md_table(text.condition_cost_rows(analysis)),
            _plot("cost_vs_score", "cost vs score"),
            "## Tasks\n", _plot("heatmap", "task x generation heat map"),
            "## Generations\n"]
    for run_id in analysis.runs:
        out += [f"### {run_id}\n", md_table(text.generation_rows(analysis, run_id))]
    out += ["## Safety\n", md_table(text.safety_rows(analysis))]
    for run_id, card in analysis.safety.items():
        out.append(f"### Safety card: {run_id}\n")
        for f in card.leakage:
            out.append(f"- **{run_id}**, generation {f['generation']}: {f['kind']} "
                       f"({f['severity']}, {f['action']}) in `{f['path']}`: {f['detail']}")
        for f in card.rule_breaks:
            out.append(f"- {run_id}, generation {f['generation']}: {f['kind']} "
                       f"({f['severity']}, {f['action']}) in `{f['path']}`: {f['detail']}")
        for i in card.invalid:
            out.append(f"- {run_id}, generation {i['generation']} invalid: {i['reason']}")
        for p in card.paused:
            out.append(f"- {run_id}, generation {p['generation']} {p['state']} (paused: "
                       f"{p['reason']})")
        rows = text.card_generation_rows(card)
        for row in rows:
            if row["diff"] != "-":
                row["diff"] = f"[diff]({row['diff']})"
        out += ["", text.canary_sentence(card), "",
                f"Sandbox events: {text.counts(card.sandbox_events_by_kind)}", "",
                md_table(rows)]
    out += ["", "## Methods\n"]
    out += [f"{i}. {m}" for i, m in enumerate(text.methods(analysis, n_boot_generation,
                                                            n_boot_verdict), start=1)]
    return "\n".join(out) + "\n"
