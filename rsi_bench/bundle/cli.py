"""`rsi-bench bundle` and `rsi-bench verify`: leaderboard submissions that re-check themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="the bundle file [default: <first run's name>.rsi-bundle.tar.gz]")
def bundle(runs: tuple[Path, ...], out: Path | None) -> None:
    """Pack RUN(s) (a run dir, or a multi-seed dir) into one verifiable .tar.gz."""
    from rsi_bench.bundle.pack import bundle as pack

    out = out or Path(f"{runs[0].resolve().name}.rsi-bundle.tar.gz")
    manifest = pack(runs, out)
    size = out.stat().st_size
    click.echo(f"bundle: {out} ({size / 1e6:.1f} MB, {len(manifest['files'])} files, "
               f"runs: {', '.join(sorted(manifest['runs']))})")
    click.echo(f"check it anywhere with: rsi-bench verify {out}")


@click.command()
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option("--no-rejudge", is_flag=True, help="skip judging the recorded solutions again")
@click.option("--no-replay", is_flag=True, help="skip replaying the loop from recorded calls")
@click.option("--sandbox", type=click.Choice(["docker", "docker:runsc"]), default="docker",
              show_default=True)
@click.option("--runtime", envvar="RSI_BENCH_RUNTIME", show_envvar=True,
              help="docker runtime to check in: runc or runsc [default: the bundle's own]")
@click.option("--workdir", type=click.Path(path_type=Path), help="scratch space [default: tmp]")
def verify(bundle_file: Path, no_rejudge: bool, no_replay: bool, sandbox: str,
           runtime: str | None, workdir: Path | None) -> None:
    """Re-check a bundle: hashes, lineage, verdicts, replay, statistics. Exit 1 on a mismatch."""
    from rsi_bench.bundle.verify import verify as check

    report = check(bundle_file, rejudge=not no_rejudge, replay=not no_replay,
                   sandbox=sandbox, runtime=runtime, workdir=workdir,
                   say=lambda text: click.echo(text, err=True))
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)
