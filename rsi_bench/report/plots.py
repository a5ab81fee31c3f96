"""The report's figures, drawn on matplotlib ``Figure`` objects and saved as PNG with Agg.

pyplot is never imported: no global figure state, no display, no backend to choose.

Every function takes an Analysis and returns a Figure; ``draw_all`` renders them to PNG bytes.
Colour is the condition, marker and shade the seed, so conditions read side by side.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from rsi_bench.results.analysis import Analysis
from rsi_bench.results.tables import task_matrix

COLORS = {"self": "#1f6fb4", "fixed": "#e07b00", "noop": "#6b6b6b"}
EXTRA_COLORS = ("#2a9d3f", "#9b3fb5", "#b5443f", "#3fa7b5")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DPI = 100
SPLIT_NAMES = {"dev": "dev", "heldout": "held-out", "sealed": "sealed"}
STYLE: dict[str, Any] = {"font.size": 10, "axes.titlesize": 11, "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "legend.fontsize": 8, "legend.frameon": False}


def condition_color(condition: str, conditions: list[str]) -> str:
    if condition in COLORS:
        return COLORS[condition]
    others = [c for c in conditions if c not in COLORS]
    return EXTRA_COLORS[others.index(condition) % len(EXTRA_COLORS)]


def _panels(n: int, width: float = 4.4, height: float = 3.4, sharey: bool = True
            ) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * n + 0.6, height), layout="constrained")
    axes = fig.subplots(1, n, sharey=sharey, squeeze=False)
    return fig, list(axes[0])


def _suptitle(fig: Figure, headline: str, key: str = "", fontsize: float = 12) -> None:
    """The figure's title on one line if it fits the figure's width, else the key (what the
    symbols mean) on a second line, wrapped at the figure's edge if even that is too wide. A
    one-run report draws narrow figures that a long one-line title would overflow."""
    text = f"{headline}  {key}" if key else headline
    width_px = fig.get_figwidth() * DPI - 16
    if key and _text_width(text, fontsize) > width_px:
        text = f"{headline}\n{key}"
    fig.suptitle(text, fontsize=fontsize, wrap=True)


def _text_width(text: str, fontsize: float) -> float:
    renderer = RendererAgg(1, 1, DPI)
    width, _, _ = renderer.get_text_width_height_descent(text, FontProperties(size=fontsize),
                                                         ismath=False)
    return float(width)


def _split_rows(analysis: Analysis, run_id: str, split: str) -> pd.DataFrame:
    """A run's scores on a split, one row per generation of the run: an invalid generation
    has NaN scores, so that its line breaks there instead of joining its neighbours."""
    s = analysis.scores
    rows = s[(s["run"] == run_id) & (s["split"] == split)].set_index("generation")
    gens = analysis.generations[analysis.generations["run"] == run_id]["generation"]
    return rows.reindex(sorted(gens)).rename_axis("generation").reset_index()


def score_per_generation(analysis: Analysis, split: str = "heldout") -> Figure:
    """Held-out score per generation with Wilson 95% bands; a panel per condition."""
    groups = analysis.conditions
    fig, axes = _panels(len(groups))
    for ax, (cond, members) in zip(axes, groups.items(), strict=True):
        color = condition_color(cond, list(groups))
        for i, run_id in enumerate(members):
            rows = _split_rows(analysis, run_id, split)
            x, y = rows["generation"].to_numpy(), rows["score"].to_numpy()
            ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=color, alpha=0.10,
                            linewidth=0)
            ax.plot(x, y, marker=MARKERS[i % len(MARKERS)], markersize=4, color=color,
                    alpha=0.55 + 0.45 * (i == 0), label=f"seed {analysis.runs[run_id].seed}")
            sel = analysis.selections[run_id].selected
            if sel in set(x) and not np.isnan(y[list(x).index(sel)]):
                ax.plot([sel], [y[list(x).index(sel)]], marker="*", markersize=13,
                        color=color, markeredgecolor="black", linestyle="none")
        ax.set_title(f"{cond}  ({len(members)} seed{'s' * (len(members) != 1)})", color=color)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right")
    axes[0].set_ylabel(f"{SPLIT_NAMES[split]} pass@1 (Wilson 95%)")
    axes[0].set_ylim(-0.02, 1.02)
    _suptitle(fig, f"{SPLIT_NAMES[split]} score per generation", "(★ = selected on dev; a gap "
              "is an invalid generation)")
    return fig


def dev_vs_heldout(analysis: Analysis) -> Figure:
    """Dev (dashed) and held-out (solid) score per generation: thin lines per seed, thick the
    mean over seeds. The gap is what selecting on dev flatters."""
    groups = analysis.conditions
    fig, axes = _panels(len(groups))
    for ax, (cond, members) in zip(axes, groups.items(), strict=True):
        color = condition_color(cond, list(groups))
        for split, style in (("dev", "--"), ("heldout", "-")):
            table = pd.DataFrame({run_id: _split_rows(analysis, run_id, split)
                                 .set_index("generation")["score"] for run_id in members})
            for run_id in members:
                ax.plot(table.index, table[run_id], linestyle=style, color=color,
                        alpha=0.25, linewidth=0.8)
            # the mean only where every seed has a score: a mean over the seeds that happened
            # to be valid would be a different quantity under the same line
            mean = table.mean(axis=1, skipna=False)
            ax.plot(mean.index, mean.to_numpy(), linestyle=style, color=color, linewidth=2.2,
                    marker="o", markersize=2.5,
                    label=f"{SPLIT_NAMES[split]}, mean of {len(members)} seed(s)")
        ax.set_title(cond, color=color)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right")
    axes[0].set_ylabel("pass@1")
    axes[0].set_ylim(-0.02, 1.02)
    _suptitle(fig, "dev vs held-out", "(dashed: dev, used for selection; solid: held-out, "
              "never seen; gap: invalid)")
    return fig


def lineage(analysis: Analysis) -> Figure:
    """Every run's tree: x = generation, y = held-out score, edges = parent -> child; invalid
    children as red crosses on the bottom band."""
    groups = analysis.conditions
    rows_n, cols_n = len(groups), max(len(m) for m in groups.values())
    fig = Figure(figsize=(4.2 * cols_n + 0.4, 2.9 * rows_n + 0.6), layout="constrained")
    grid = fig.subplots(rows_n, cols_n, squeeze=False, sharey=True)
    for r, (cond, members) in enumerate(groups.items()):
        color = condition_color(cond, list(groups))
        for c in range(cols_n):
            ax = grid[r][c]
            if c >= len(members):
                ax.set_visible(False)
                continue
            _tree(ax, analysis, members[c], color)
    _suptitle(fig, "lineage: parent → child, y = held-out score",
              "(■ generation 0, ★ selected, ✕ invalid child)")
    return fig


def _tree(ax: Axes, analysis: Analysis, run_id: str, color: str) -> None:
    gens = analysis.generations[analysis.generations["run"] == run_id]
    score = dict(zip(gens["generation"], gens["heldout_score"], strict=True))
    bottom = -0.08
    ypos = {g: (bottom if pd.isna(s) else s) for g, s in score.items()}
    edges = [[(int(parent), ypos[int(parent)]), (g, ypos[g])]
             for g, parent in zip(gens["generation"], gens["parent"], strict=True)
             if not pd.isna(parent) and int(parent) in ypos]
    ax.add_collection(LineCollection(edges, colors="#b0b0b0", linewidths=0.9, zorder=1))
    ok = gens[gens["heldout_score"].notna()]
    bad = gens[gens["heldout_score"].isna() & (gens["generation"] > 0)]
    ax.scatter(ok["generation"], ok["heldout_score"], s=22, color=color, zorder=2)
    ax.scatter(bad["generation"], [bottom] * len(bad), s=30, marker="x", color="#c62828",
               zorder=3)
    ax.scatter([0], [ypos.get(0, bottom)], s=45, marker="s", color=color,
               edgecolor="black", zorder=3)
    sel = analysis.selections[run_id].selected
    ax.scatter([sel], [ypos.get(sel, bottom)], s=160, marker="*", color=color,
               edgecolor="black", zorder=4)
    ax.axhline(bottom, color="#c62828", linewidth=0.5, alpha=0.4)
    # The band is named by a tick label, outside the plotting area: a label inside it sat on
    # the markers of the last generations (the selected star among them).
    ticks = [bottom, *np.round(np.arange(0.0, 1.01, 0.2), 1)]
    ax.set_yticks(ticks, ["invalid", *(f"{t:.1f}" for t in ticks[1:])])
    for label in ax.get_yticklabels()[:1]:  # none where a shared axis hides them
        label.set_color("#c62828")
    ax.set_ylim(bottom - 0.06, 1.02)
    ax.set_title(f"{run_id}  ({len(bad)} invalid)", fontsize=10, color=color)
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def cost_vs_score(analysis: Analysis) -> Figure:
    """Held-out score against cumulative model cost; one line per run."""
    groups = analysis.conditions
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    gens = analysis.generations
    for cond, members in groups.items():
        color = condition_color(cond, list(groups))
        for i, run_id in enumerate(members):
            rows = gens[(gens["run"] == run_id) & gens["heldout_score"].notna()]
            ax.plot(rows["cum_cost_usd"], rows["heldout_score"], color=color,
                    marker=MARKERS[i % len(MARKERS)], markersize=3.5,
                    alpha=0.55 + 0.45 * (i == 0), label=f"{cond} s{analysis.runs[run_id].seed}")
    ax.set_xlabel("cumulative model cost (USD)")
    ax.set_ylabel("held-out pass@1")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title("cost vs held-out score")
    return fig


def heatmap(analysis: Analysis, split: str = "heldout") -> Figure:
    """Task x generation pass fraction per run; tasks sorted by their mean over all runs."""
    groups = analysis.conditions
    tasks = analysis.tasks[analysis.tasks["split"] == split]
    order = tasks.groupby("task_id")["score"].mean().sort_values(ascending=False).index
    rows_n, cols_n = len(groups), max(len(m) for m in groups.values())
    height = max(2.4, min(6.0, 1.0 + 0.03 * len(order)))
    fig = Figure(figsize=(3.6 * cols_n + 1.0, height * rows_n), layout="constrained")
    grid = fig.subplots(rows_n, cols_n, squeeze=False, sharey=True)
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#d8d8d8")
    image = None
    for r, (cond, members) in enumerate(groups.items()):
        for c in range(cols_n):
            ax = grid[r][c]
            if c >= len(members):
                ax.set_visible(False)
                continue
            run_id = members[c]
            gens = analysis.generations[analysis.generations["run"] == run_id]["generation"]
            matrix = task_matrix(analysis.tasks, run_id, split)
            matrix = matrix.reindex(index=order, columns=sorted(gens))
            image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(dtype=float)),
                              aspect="auto", cmap=cmap, vmin=0, vmax=1,
                              interpolation="nearest",
                              extent=(-0.5, len(matrix.columns) - 0.5, len(order) - 0.5, -0.5))
            ax.set_title(run_id, fontsize=10,
                         color=condition_color(cond, list(groups)))
            ax.set_xlabel("generation")
            ax.set_yticks([])
            ax.grid(False)
        grid[r][0].set_ylabel(f"{len(order)} {SPLIT_NAMES[split]} tasks\n(easy → hard)")
    if image is not None:
        fig.colorbar(image, ax=grid, shrink=0.6, label="pass fraction (grey: not scored)")
    _suptitle(fig, f"task × generation, {SPLIT_NAMES[split]} split")
    return fig


PLOTS: dict[str, Callable[[Analysis], Figure]] = {
    "score_per_generation": score_per_generation,
    "dev_vs_heldout": dev_vs_heldout,
    "lineage": lineage,
    "cost_vs_score": cost_vs_score,
    "heatmap": heatmap,
}
TITLES = {"score_per_generation": "Held-out score per generation",
          "dev_vs_heldout": "Dev vs held-out", "lineage": "Lineage",
          "cost_vs_score": "Cost vs score", "heatmap": "Task × generation"}


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def draw_all(analysis: Analysis) -> dict[str, bytes]:
    """Every plot as PNG bytes, by name."""
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        return {name: png(draw(analysis)) for name, draw in PLOTS.items()}
