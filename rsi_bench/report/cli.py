"""`rsi-bench report`: the report of one or more runs, side by side."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="output directory  [default: reports/<name>]")
@click.option("--name", help="report name  [default: the first run directory's name]")
def report(runs: tuple[Path, ...], out: Path | None, name: str | None) -> None:
    """Report on RUN directories: verdicts, plots, tables (HTML, Markdown, JSON, CSV, PNG).

    Give several runs (conditions and seeds of one experiment) to see them side by side and
    pooled; a directory holding seed-N run directories stands for all of them.
    """
    from rsi_bench.report import default_name, render
    from rsi_bench.results.load import find_runs

    paths = [run for given in runs for run in find_runs(given)]
    name = name or default_name(paths[0])
    out = out or Path("reports") / name
    for path in render(paths, out, name=name):
        click.echo(str(path))
