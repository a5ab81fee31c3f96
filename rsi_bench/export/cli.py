"""``rsi-bench export inspect RUN``: a run as Inspect AI eval logs, one per generation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from rsi_bench.errors import RsiBenchError


class UserError(click.ClickException):
    """An rsi-bench error shown as one line, with the exit status of any bad input (2)."""

    exit_code = 2


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except RsiBenchError as exc:
        raise UserError(str(exc)) from None


@click.group("export")
def export() -> None:
    """Export a run in other tools' formats."""


@export.command("inspect")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="where to write the logs  [default: RUN/inspect-logs]")
@click.option("--format", "fmt", type=click.Choice(["eval", "json"]), default="eval",
              show_default=True, help="Inspect's log format")
def inspect_logs(run: Path, out: Path | None, fmt: str) -> None:
    """One Inspect AI eval log per generation of RUN.

    RUN is a run directory (finished or not; its store is only read) or a multi-seed run
    directory, which gets one subdirectory of logs per seed. Needs rsi-bench[inspect]. View the
    logs with `inspect view --log-dir OUT`.
    """
    from rsi_bench.export.inspect_log import default_out_dir, export_inspect

    with _user_errors():
        logs = export_inspect(run, out, fmt=fmt,
                              warn=lambda message: click.echo(f"warning: {message}", err=True))
    for log in logs:
        scores = "  ".join(f"{k} {v:.3f}" for k, v in log.accuracy.items()) or "-"
        click.echo(f"seed {log.seed} gen {log.generation:<3} {log.status:<8} "
                   f"{log.samples:>4} samples  {scores}")
    target = out if out is not None else default_out_dir(run)
    click.echo(f"wrote {len(logs)} log(s) to {target}; view them with: "
               f"inspect view --log-dir {target}")
