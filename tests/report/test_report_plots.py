"""The figures' geometry, measured on the drawn figures: titles inside the figure, the lineage's
"invalid" band named outside the plotting area, and score lines broken at invalid generations.
The hand run (see conftest) is a one-run report, the narrowest figures there are; its
generation 2 is invalid."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rsi_bench.report import plots
from rsi_bench.results.analysis import Analysis, analyze

INVALID = 2  # the hand run's invalid generation


@pytest.fixture(scope="module")
def hand(hand_run: Path) -> Analysis:
    return analyze([hand_run])


@pytest.fixture(scope="module")
def multi(multi_runs: list[Path]) -> Analysis:
    return analyze(multi_runs)


def drawn(analysis: Analysis, name: str) -> Figure:
    with matplotlib.rc_context(plots.STYLE):  # type: ignore[arg-type]
        fig = plots.PLOTS[name](analysis)
        FigureCanvasAgg(fig).draw()
    return fig


@pytest.mark.parametrize("name", sorted(plots.PLOTS))
@pytest.mark.parametrize("which", ["hand", "multi"])
def test_every_title_is_inside_its_figure(name: str, which: str,
                                          request: pytest.FixtureRequest) -> None:
    fig = drawn(request.getfixturevalue(which), name)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = fig.bbox
    titles = [fig._suptitle] if fig._suptitle is not None else []
    titles += [ax.title for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert titles
    for title in titles:
        extent = title.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, (title.get_text(), extent, box)
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, (title.get_text(), extent, box)


def test_the_old_one_line_title_would_not_fit() -> None:
    """Control: the measurement above fails a title wider than a one-run figure."""
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    fig.subplots()
    fig.suptitle("dev (dashed, used for selection) vs held-out (solid, never seen)",
                 fontsize=12)
    FigureCanvasAgg(fig).draw()
    extent = fig._suptitle.get_window_extent(fig.canvas.get_renderer())  # type: ignore
    assert extent.x0 < fig.bbox.x0 or extent.x1 > fig.bbox.x1


def test_the_invalid_band_is_named_outside_the_plotting_area(hand: Analysis) -> None:
    fig = drawn(hand, "lineage")
    ax = fig.axes[0]
    assert not ax.texts  # nothing written over the markers
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "invalid" and ax.get_yticks()[0] < 0
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    label = ax.get_yticklabels()[0].get_window_extent(renderer)
    assert label.x1 <= ax.get_window_extent(renderer).x0  # left of the axes


def score_lines(fig: Figure) -> list[Line2D]:
    """Lines drawn over generations 0..3 (the star markers are single points)."""
    return [line for ax in fig.axes for line in ax.get_lines()
            if len(np.asarray(line.get_xdata())) > 1]


@pytest.mark.parametrize("name", ["dev_vs_heldout", "score_per_generation"])
def test_score_lines_break_at_an_invalid_generation(hand: Analysis, name: str) -> None:
    lines = score_lines(drawn(hand, name))
    assert lines
    for line in lines:
        x = list(np.asarray(line.get_xdata(), dtype=float))
        y = np.asarray(line.get_ydata(), dtype=float)
        assert x == [0, 1, 2, 3]
        assert np.isnan(y[INVALID])  # a gap, not a straight line from 1 to 3
        assert not np.isnan(y[[0, 1, 3]]).any()


def test_a_seed_mean_is_drawn_only_where_every_seed_has_a_score(multi: Analysis) -> None:
    fig = drawn(multi, "dev_vs_heldout")
    gens = multi.generations
    for ax, (_, members) in zip(fig.axes, multi.conditions.items(), strict=True):
        invalid = set(gens[gens["run"].isin(members) & gens["heldout_score"].isna()
                           & (gens["generation"] > 0)]["generation"])
        means = [line for line in ax.get_lines() if line.get_linewidth() > 2]
        assert len(means) == 2  # dev and held-out
        for line in means:
            x = np.asarray(line.get_xdata(), dtype=float)
            y = np.asarray(line.get_ydata(), dtype=float)
            assert {int(g) for g in x[np.isnan(y)]} == invalid
