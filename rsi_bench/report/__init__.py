"""The report: ``render(runs, out_dir)`` writes index.html, report.md, results.json,
generations.csv, tasks.csv and plots/*.png for one or more runs, and diffs/ (every generation's
diff, linked from the safety card).

Importing this package is cheap (the CLI imports it for every command): pandas, matplotlib and
the analysis load when a report is rendered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from rsi_bench.results.load import RunData

if TYPE_CHECKING:
    from rsi_bench.results.analysis import Analysis

__all__ = ["default_name", "render", "render_analysis"]


def default_name(run: str | Path) -> str:
    """A run directory's name; for a ``seed-N`` directory (several seeds of one run command),
    its parent's name."""
    resolved = Path(run).resolve()
    if resolved.name == "run.sqlite":
        resolved = resolved.parent
    if re.fullmatch(r"seed-\d+", resolved.name) and resolved.parent.name:
        return resolved.parent.name
    return resolved.name


def render(runs: Iterable[RunData | str | Path], out_dir: str | Path, *, name: str | None = None,
           timings: MutableMapping[str, float] | None = None) -> list[Path]:
    """Analyse ``runs`` (RunData or run directories) and write the report; return the paths.

    ``timings``, when given, receives the seconds spent loading, analysing, plotting and
    writing.
    """
    from rsi_bench.results.analysis import analyze, index_runs

    clock = time.perf_counter()
    runs = list(runs)
    indexed = index_runs(runs)
    loaded = time.perf_counter()
    analysis = analyze(indexed.values())
    analysed = time.perf_counter()
    if timings is not None:
        timings["load"], timings["analysis"] = loaded - clock, analysed - loaded
    first = runs[0]
    name = name or default_name(first.path if isinstance(first, RunData) else first)
    return render_analysis(analysis, out_dir, name=name, timings=timings)


def render_analysis(analysis: Analysis, out_dir: str | Path, *, name: str,
                    timings: MutableMapping[str, float] | None = None) -> list[Path]:
    """Write the report of an existing Analysis."""
    from rsi_bench.report.html import render_html
    from rsi_bench.report.markdown import render_markdown
    from rsi_bench.report.plots import draw_all
    from rsi_bench.results.compare import N_BOOT_GENERATION
    from rsi_bench.results.export import write_results
    from rsi_bench.results.safety_gens import write_diffs
    from rsi_bench.results.verdicts import N_BOOT_VERDICT

    clock = time.perf_counter()
    plots = draw_all(analysis)
    drawn = time.perf_counter()
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths = [out / "index.html", out / "report.md"]
    paths[0].write_text(render_html(analysis, plots, name, N_BOOT_GENERATION, N_BOOT_VERDICT))
    paths[1].write_text(render_markdown(analysis, name, N_BOOT_GENERATION, N_BOOT_VERDICT))
    paths += write_results(analysis, out)
    write_diffs(analysis.runs, out)  # diffs/, where the safety card's links point (not listed)
    for plot, data in plots.items():
        path = out / "plots" / f"{plot}.png"
        path.write_bytes(data)
        paths.append(path)
    if timings is not None:
        timings["plots"], timings["write"] = drawn - clock, time.perf_counter() - drawn
    return paths
