"""`rsi-bench run`: the self-improvement loop from the command line."""

from __future__ import annotations

import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rsi_bench.errors import InputError
from rsi_bench.loop.config import IMPROVERS, RunConfig, load_toml
from rsi_bench.loop.control import Paused, RunHalted
from rsi_bench.loop.policy import parse_rules
from rsi_bench.loop.strategy import STRATEGIES

DEFAULTS = RunConfig()


def _budgets(values: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``solve:calls=200``, ``improve:usd=1.5``, ``solve:tokens=100000``."""
    out: dict[str, dict[str, float]] = {}
    for value in values:
        try:
            role, rest = value.split(":", 1)
            kind, number = rest.split("=", 1)
            parsed = float(number) if kind == "usd" else int(number)
        except ValueError:
            raise InputError(f"--budget {value!r}: expected ROLE:KIND=NUMBER, e.g. "
                             "solve:calls=200 or improve:usd=1.5") from None
        if kind not in ("calls", "tokens", "usd"):
            raise InputError(f"--budget {value!r}: KIND is calls, tokens or usd")
        out.setdefault(role, {})[kind] = parsed
    return out


class _Reporter:
    """Live progress of one loop seed: a bar over every solve of the run, with the current
    generation's dev and held-out pass rates, the dollars spent, and the time left.

    On a terminal it is a rich progress bar; otherwise (logs, CI) a line per quarter of each
    generation, so a log still shows score, cost and ETA without control characters.
    """

    def __init__(self, seed: int, *, live: bool | None = None) -> None:
        self.seed, self.start = seed, time.monotonic()
        self.live = sys.stderr.isatty() if live is None else live
        self.total = self.done = self.at_start = 0
        self.gen_total = self.gen_done = 0
        self.generation: int | None = None
        self.passed: dict[str, list[int]] = {}
        self.infra = 0  # infra events of the current generation
        self.cost = 0.0
        self.bar: Progress | None = None
        self.task_id: TaskID | None = None

    # -- what the loop reports
    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        g = info.get("generation")
        if kind == "start":
            self.total, self.done, self.at_start = info["total"], info["done"], info["done"]
            self.cost = info["cost_usd"]
            if self.live:
                self._start_bar()
        elif kind == "evaluate":
            self.generation, self.gen_total, self.gen_done = g, info["todo"], 0
            self.passed, self.infra = {}, 0
            if self.gen_total:
                self._say(f"generation {g}: solving {self.gen_total} tasks")
        elif kind == "result":
            self.done += 1
            self.gen_done += 1
            self.cost = info.get("cost_usd", self.cost)
            if info.get("split") != "canary":  # a canary is never a score, not even here
                entry = self.passed.setdefault(info.get("split", "?"), [0, 0])
                entry[0] += info["status"] == "pass"
                entry[1] += 1
            if not self.live and (self.gen_done == self.gen_total
                                  or self.gen_done % max(1, self.gen_total // 4) == 0):
                self._say(f"generation {g}: {self.gen_done}/{self.gen_total}, {self._scores()}, "
                          f"{self._money()}, {self._times()}")
        elif kind == "improve":
            self._say(f"generation {g}: improving generation {info['parent']}")
        elif kind == "invalid":
            self.done += info.get("skipped", 0)
            self._say(f"generation {g}: invalid: {info['reason']}")
        elif kind == "infra":
            self.infra += 1
            task = f" of {info['task_id']}" if info.get("task_id") else ""
            again = ("" if info.get("retry_in_s") is None
                     else f"; retry {info['attempt'] + 1}/{info['attempts']} in "
                          f"{info['retry_in_s']:g} s")
            self._say(f"generation {g}: infra: the {info['job']}{task} failed outside the "
                      f"agent ({info['cause']}){again}")
        self._refresh()

    # -- rendering
    def _scores(self) -> str:
        parts = [f"{split} {p}/{n}" for split, (p, n) in sorted(self.passed.items())]
        if self.infra:
            parts.append(f"infra {self.infra}")
        return " ".join(parts) or "no results yet"

    def _money(self) -> str:
        return f"${self.cost:.2f} spent"

    def _eta(self) -> float | None:
        worked = self.done - self.at_start
        if worked <= 0 or self.done >= self.total:
            return None
        return (time.monotonic() - self.start) / worked * (self.total - self.done)

    def _times(self) -> str:
        eta = self._eta()
        left = "" if eta is None else f", about {_duration(eta)} left"
        return f"{_duration(time.monotonic() - self.start)} elapsed{left}"

    def _say(self, text: str) -> None:
        line = f"[seed {self.seed}] {text}"
        if self.bar is not None:
            self.bar.console.print(line, highlight=False)
        else:
            click.echo(line, err=True)

    def _start_bar(self) -> None:
        self.bar = Progress(TextColumn("[bold]seed {task.fields[seed]}[/] {task.description}"),
                            BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[scores]}"), TextColumn("{task.fields[cost]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.bar.start()
        self.task_id = self.bar.add_task("starting", total=self.total, completed=self.done,
                                         seed=self.seed, scores="", cost=self._money())

    def _refresh(self) -> None:
        if self.bar is None or self.task_id is None:
            return
        where = "" if self.generation is None else f"gen {self.generation}"
        self.bar.update(self.task_id, completed=self.done, description=where,
                        scores=self._scores() if self.passed else "", cost=self._money())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@click.command()
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="a TOML file with any of these options (flags given here override it)")
@click.option("--suite", help=f"task suite [default: {DEFAULTS.suite}]")
@click.option("--limit", type=int, help="use only the first N tasks of the suite")
@click.option("--model", help=f"provider/model [default: {DEFAULTS.model}]")
@click.option("--generations", type=int, help=f"[default: {DEFAULTS.generations}]")
@click.option("--improver", type=click.Choice(IMPROVERS), help="self | noop | fixed")
@click.option("--strategy", type=click.Choice(STRATEGIES), help="parent selection")
@click.option("--seed", "seeds", type=int, multiple=True, help="loop seed (repeat for several)")
@click.option("--split-seed", type=int)
@click.option("--sealed", type=float, help="fraction of tasks kept sealed until the end")
@click.option("--canaries", type=float,
              help="canary tasks mixed into dev, as a fraction of the dev tasks [default: 0]")
@click.option("--samples", type=int, help="samples per task")
@click.option("--concurrency", type=int, help="parallel solves (and judge workers)")
@click.option("--sandbox", type=click.Choice(["docker", "docker:runsc"]),
              help="where agents and solutions run")
@click.option("--runtime", envvar="RSI_BENCH_RUNTIME", show_envvar=True,
              help="docker container runtime: runc (default) or runsc (gVisor)")
@click.option("--solve-timeout", type=float, help="seconds per solve (also bounds validation)")
@click.option("--improve-timeout", type=float, help="seconds per improve")
@click.option("--judge-timeout", type=float, help="seconds per solution in the judge")
@click.option("--model-time-cap", type=float,
              help="most seconds of model time a solve or improve may have excluded from its "
                   "timeout [default: ten times the timeout]")
@click.option("--budget", "budgets", multiple=True, help="ROLE:KIND=N, e.g. solve:calls=500")
@click.option("--agent", type=click.Path(path_type=Path), help="generation 0's directory")
@click.option("--on-finding", "on_finding", multiple=True,
              help="what a finding does: ACTION for every kind, or KIND=ACTION / GROUP=ACTION "
                   "(record, reject, pause); repeat or join with commas [default: reject "
                   "leak, grader, integrity and canary findings, record heuristics]")
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs/latest"),
              show_default=True, help="where the run lives; an existing one is resumed")
@click.option("--report/--no-report", "write_report", default=True, show_default=True,
              help="write the report (RUN_DIR/report/) when the loop ends")
def run(config_file: Path | None, seeds: tuple[int, ...], budgets: tuple[str, ...],
        run_dir: Path, agent: Path | None, write_report: bool, on_finding: tuple[str, ...],
        **flags: Any) -> None:
    """Run the self-improvement loop (resumes an existing --run-dir)."""
    from rsi_bench.loop.runner import run_once

    values: dict[str, Any] = load_toml(config_file) if config_file else {}
    if "run_dir" in values and run_dir == Path("runs/latest"):
        run_dir = Path(values.pop("run_dir"))
    values.pop("run_dir", None)
    seeds = seeds or tuple(values.pop("seeds", ())) or (values.pop("seed", 0),)
    values.pop("seeds", None)
    values.pop("seed", None)
    values.update({k: v for k, v in flags.items() if v is not None})
    if budgets:
        values["budgets"] = _budgets(budgets)
    if agent is not None:
        values["agent"] = str(agent.resolve())
    if on_finding:
        values["on_finding"] = parse_rules(on_finding)
    known = {f.name for f in fields(RunConfig)}
    config = RunConfig(**{k: v for k, v in values.items() if k in known})
    seed_dirs = []
    halted: RunHalted | None = None
    for seed in seeds:
        seed_dir = run_dir / f"seed-{seed}" if len(seeds) > 1 else run_dir
        seed_dirs.append(seed_dir)
        reporter = _Reporter(seed)
        try:
            rows = run_once(RunConfig(**{**config.__dict__, "seed": seed}), seed_dir, reporter,
                            stop_dirs=(run_dir,))
        except RunHalted as exc:
            halted = exc
            break
        finally:
            reporter.close()
        click.echo(f"\nseed {seed}: {seed_dir}")
        click.echo("gen  parent  improver  status     dev     heldout  sealed  infra")
        for row in rows:
            cells = [f"{row.scores[s]:.3f}" if s in row.scores else "-"
                     for s in ("dev", "heldout", "sealed")]
            parent = "-" if row.parent is None else str(row.parent)
            click.echo(f"{row.generation:<4} {parent:<7} {row.improver:<9} {row.status:<10} "
                       f"{cells[0]:<7} {cells[1]:<8} {cells[2]:<7} {row.infra}" +
                       (f"  ({row.reason})" if row.reason else ""))
        click.echo(f"store: {seed_dir / 'run.sqlite'}; agents (git): {seed_dir / 'agents'}")
    if halted is not None and not isinstance(halted, Paused):
        _halt(halted)
    if write_report:  # a paused run's report is what the person deciding reads
        from rsi_bench.report import render

        paths = render(seed_dirs, run_dir / "report", name=run_dir.resolve().name)
        index = next((p for p in paths if p.name == "index.html"), paths[0])
        click.echo(f"report: {index} (and report.md, results.json, CSV tables, plots/, "
                   f"diffs/ beside it); `rsi-bench report` combines runs")
    if halted is not None:
        _halt(halted)


def _halt(halted: RunHalted) -> None:
    click.echo(f"rsi-bench: {halted}", err=True)
    sys.exit(halted.exit_code)
