"""`rsi-bench run`: the self-improvement loop from the command line."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from rsi_bench.errors import InputError
from rsi_bench.loop.config import IMPROVERS, RunConfig, load_toml
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
    def __init__(self, seed: int) -> None:
        self.seed, self.start = seed, time.monotonic()
        self.total = self.done = self.passed = 0

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        g = info.get("generation")
        if kind == "evaluate":
            self.total, self.done, self.passed = info["todo"], 0, 0
            if self.total:
                click.echo(f"[seed {self.seed}] generation {g}: solving {self.total} tasks",
                           err=True)
        elif kind == "result":
            self.done += 1
            self.passed += info["status"] == "pass"
            if self.done == self.total or self.done % max(1, self.total // 4) == 0:
                click.echo(f"[seed {self.seed}] generation {g}: {self.done}/{self.total}, "
                           f"{self.passed} pass, {time.monotonic() - self.start:.0f} s", err=True)
        elif kind == "improve":
            click.echo(f"[seed {self.seed}] generation {g}: improving generation "
                       f"{info['parent']}", err=True)
        elif kind == "invalid":
            click.echo(f"[seed {self.seed}] generation {g}: invalid: {info['reason']}", err=True)


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
@click.option("--samples", type=int, help="samples per task")
@click.option("--concurrency", type=int, help="parallel solves (and judge workers)")
@click.option("--sandbox", type=click.Choice(["docker"]), help="where agents run")
@click.option("--solve-timeout", type=float, help="seconds per solve (also bounds validation)")
@click.option("--improve-timeout", type=float, help="seconds per improve")
@click.option("--judge-timeout", type=float, help="seconds per solution in the judge")
@click.option("--budget", "budgets", multiple=True, help="ROLE:KIND=N, e.g. solve:calls=500")
@click.option("--agent", type=click.Path(path_type=Path), help="generation 0's directory")
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs/latest"),
              show_default=True, help="where the run lives; an existing one is resumed")
def run(config_file: Path | None, seeds: tuple[int, ...], budgets: tuple[str, ...],
        run_dir: Path, agent: Path | None, **flags: Any) -> None:
    """Run the self-improvement loop (resumes an existing --run-dir)."""
    from rsi_bench.loop.runner import Loop

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
    known = {f.name for f in fields(RunConfig)}
    config = RunConfig(**{k: v for k, v in values.items() if k in known})
    for seed in seeds:
        seed_dir = run_dir / f"seed-{seed}" if len(seeds) > 1 else run_dir
        loop = Loop(RunConfig(**{**config.__dict__, "seed": seed}), seed_dir, _Reporter(seed))
        try:
            rows = loop.run()
        finally:
            loop.close()
        click.echo(f"\nseed {seed}: {seed_dir}")
        click.echo("gen  parent  improver  status     dev     heldout  sealed")
        for row in rows:
            cells = [f"{row.scores[s]:.3f}" if s in row.scores else "-"
                     for s in ("dev", "heldout", "sealed")]
            parent = "-" if row.parent is None else str(row.parent)
            click.echo(f"{row.generation:<4} {parent:<7} {row.improver:<9} {row.status:<10} "
                       f"{cells[0]:<7} {cells[1]:<8} {cells[2]}" +
                       (f"  ({row.reason})" if row.reason else ""))
        click.echo(f"store: {seed_dir / 'run.sqlite'}; agents (git): {seed_dir / 'agents'}")
