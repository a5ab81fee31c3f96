"""`rsi-bench stop`, and `rsi-bench approve` / `reject`: a person's decision on a paused
generation."""

from __future__ import annotations

from pathlib import Path

import click


def _decide(run_dir: Path, generation: int, verdict: str, note: str) -> None:
    from rsi_bench.loop.control import decide

    reason = decide(run_dir, generation, verdict, note)
    then = "continues with it" if verdict == "approved" else "skips it (invalid)"
    click.echo(f"generation {generation} {verdict} (it was paused: {reason}); re-run the same "
               f"`rsi-bench run` command: the run {then}")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("generation", type=int)
@click.option("--note", default="", help="why (kept with the decision in the run's store)")
def approve(run_dir: Path, generation: int, note: str) -> None:
    """Let a paused generation go on: it is evaluated and may become a parent."""
    _decide(run_dir, generation, "approved", note)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("generation", type=int)
@click.option("--note", default="", help="why (kept with the decision in the run's store)")
def reject(run_dir: Path, generation: int, note: str) -> None:
    """Refuse a paused generation: it becomes invalid and never becomes a parent."""
    _decide(run_dir, generation, "rejected", note)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def stop(run_dir: Path) -> None:
    """Stop a run after its jobs in flight (every seed run under RUN_DIR); re-running the same
    `rsi-bench run` command resumes it."""
    from rsi_bench.loop.control import request_stop

    path = request_stop(run_dir)
    click.echo(f"stop requested ({path}): the run ends after the jobs in flight")
