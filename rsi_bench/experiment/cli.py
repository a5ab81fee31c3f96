"""`rsi-bench plan FILE.toml` and `rsi-bench experiment FILE.toml`."""

from __future__ import annotations

from pathlib import Path

import click

from rsi_bench.experiment.spec import ExperimentSpec, load_spec


def split_counts(spec: ExperimentSpec) -> tuple[str, int, int]:
    """(claim split, its task count, dev + held-out task count) as the runs will assign them."""
    from rsi_bench.tasks import load_suite
    from rsi_bench.tasks.splits import assign_splits

    base = spec.base
    suite = load_suite(base.suite)
    tasks = list(suite.tasks[: base.limit] if base.limit else suite.tasks)
    fractions = {"dev": (1 - base.sealed) / 2, "heldout": (1 - base.sealed) / 2}
    if base.sealed:
        fractions["sealed"] = base.sealed
    splits = assign_splits([t.id for t in tasks], base.split_seed, fractions)
    claim = "sealed" if base.sealed else "heldout"
    solved = sum(s != "sealed" for s in splits.values())
    return claim, sum(s == claim for s in splits.values()), solved


def compute_plan(spec: ExperimentSpec, pilot_dir: Path | None = None,
                 replications: int | None = None):  # type: ignore[no-untyped-def]
    from rsi_bench.experiment.plan import REPLICATIONS, load_pilot, make_plan

    claim, n_claim, n_solved = split_counts(spec)
    pilot = load_pilot(pilot_dir) if pilot_dir is not None else None
    return make_plan(spec, n_tasks=n_claim, n_solved_tasks=n_solved, claim_split=claim,
                     pilot=pilot, replications=replications or REPLICATIONS)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--pilot", "pilot_dir", type=click.Path(path_type=Path),
              help="a pilot run's directory: per-task pass rates, cost per call, time per solve")
@click.option("--replications", type=click.IntRange(200, 100_000), default=None,
              help="simulated replications per power estimate [default: 4000]")
def plan(file: Path, pilot_dir: Path | None, replications: int | None) -> None:
    """What an experiment can detect, the smallest design for a target gain, and its cost."""
    spec = load_spec(file)
    for line in compute_plan(spec, pilot_dir, replications).lines():
        click.echo(line)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dir", "out_dir", type=click.Path(path_type=Path),
              help="the experiment directory; an existing one is resumed "
                   "[default: experiments/<name>]")
@click.option("--parallel", type=click.IntRange(1, 64),
              help="runs at once [default: plan.parallel_runs, else cores / concurrency]")
@click.option("--pilot", "pilot_dir", type=click.Path(path_type=Path),
              help="a pilot run for the plan printed before the experiment starts")
@click.option("--replications", type=click.IntRange(200, 100_000), default=None,
              help="simulated replications per power estimate of the plan [default: 4000]")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="local: runs in threads here; ray: each run one task on a Ray cluster")
@click.option("--address", help="the Ray cluster to join (ray.init address, e.g. HOST:6379) "
                                "[default: RAY_ADDRESS, else a running local cluster]")
def experiment(file: Path, out_dir: Path | None, parallel: int | None, pilot_dir: Path | None,
               replications: int | None, executor: str, address: str | None) -> None:
    """Run every (condition, seed) of FILE as runs under one directory, then one report."""
    from rsi_bench.experiment.runner import detectability, run_all
    from rsi_bench.experiment.spec import default_parallel_runs
    from rsi_bench.report import render_analysis
    from rsi_bench.results.analysis import analyze

    if executor == "ray":
        from rsi_bench.experiment.ray_executor import import_ray

        import_ray()  # without Ray: one line, before any work
    elif address is not None:
        raise click.UsageError("--address is for --executor ray")
    spec = load_spec(file)
    out_dir = out_dir or Path("experiments") / spec.name
    echo = lambda s: click.echo(s, err=True)  # noqa: E731
    connection = None
    if executor == "ray":
        from rsi_bench.experiment.ray_executor import connect, run_all_ray

        connection = connect(spec, address)  # the nodes check themselves while the plan is made
    try:
        planned = compute_plan(spec, pilot_dir, replications)
        for line in planned.lines():
            click.echo(line)
        if connection is not None:
            click.echo(f"running {len(spec.conditions) * len(spec.seeds)} runs in {out_dir} "
                       "as Ray tasks, one per CPU of the cluster")
            runs = run_all_ray(spec, out_dir, address=address, echo=echo, connection=connection)
            connection = None  # closed by run_all_ray
        else:
            parallel = parallel or spec.plan.parallel_runs or default_parallel_runs(
                spec.base.concurrency)
            click.echo(f"running {len(spec.conditions) * len(spec.seeds)} runs in {out_dir}, "
                       f"{parallel} at a time")
            runs = run_all(spec, out_dir, parallel=parallel, echo=echo)
    finally:
        if connection is not None:
            connection.close()
    analysis = analyze(runs)
    paths = render_analysis(analysis, out_dir / "report", name=spec.name)
    lines = detectability(analysis.condition_verdicts, planned.mde)
    markdown = out_dir / "report" / "report.md"
    markdown.write_text(markdown.read_text() + "\n## Could this experiment detect it?\n\n"
                        + "\n".join(lines) + "\n")
    for condition, v in analysis.condition_verdicts.items():
        click.echo(f"{condition}: {v.label}: {v.reason}")
    for line in lines:
        click.echo(line)
    index = next((p for p in paths if p.name == "index.html"), paths[0])
    click.echo(f"report: {index} (and report.md, results.json beside it)")
