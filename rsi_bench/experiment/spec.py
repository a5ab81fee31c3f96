"""An experiment's file: one TOML names the suite, model, splits, budgets, conditions, loop seeds
and samples; ``[plan]`` holds what the power planner assumes.

```toml
[experiment]
name = "exp"
suite = "humaneval"
model = "simulated"
generations = 3
conditions = ["self", "noop", "fixed"]   # or an agent directory: its own condition
seeds = [0, 1, 2]
samples = 1
# any other `rsi-bench run` option: limit, split_seed, sealed, strategy, concurrency,
# sandbox, runtime, solve_timeout, improve_timeout, judge_timeout, budgets

[plan]
target_effect = 0.05      # the gain to detect, on [0, 1]
base_rate = 0.5           # generation 0's pass rate, without a pilot (equal difficulty)
usd_per_call = 0.002      # without a pilot: cost unknown unless given
seconds_per_solve = 20    # without a pilot: wall time unknown unless given
parallel_runs = 2         # runs at once (default: from the cores)
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rsi_bench.errors import InputError
from rsi_bench.loop.config import IMPROVERS, RunConfig

SCHEMA_VERSION = 1
_RUN_KEYS = {f.name for f in fields(RunConfig)} - {"improver", "seed", "agent"}
_PLAN_KEYS = {"target_effect", "base_rate", "usd_per_call", "seconds_per_solve",
              "parallel_runs", "power", "alpha"}


@dataclass(frozen=True)
class Condition:
    """One arm of the experiment: an improver on generation 0's agent (the seed agent unless an
    agent directory names the condition, which then runs with the ``self`` improver)."""

    name: str
    improver: str
    agent: str = ""

    @property
    def is_control(self) -> bool:
        return self.improver in ("noop", "fixed") and not self.agent


@dataclass(frozen=True)
class PlanAssumptions:
    target_effect: float = 0.05
    base_rate: float = 0.5
    usd_per_call: float | None = None
    seconds_per_solve: float | None = None
    parallel_runs: int | None = None
    power: float = 0.8
    alpha: float = 0.05


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    run: dict[str, Any]  # RunConfig fields shared by every run (no improver, seed, agent)
    conditions: tuple[Condition, ...]
    seeds: tuple[int, ...]
    plan: PlanAssumptions = field(default_factory=PlanAssumptions)

    def run_config(self, condition: Condition, seed: int) -> RunConfig:
        return RunConfig(**{**self.run, "improver": condition.improver, "seed": seed,
                            "agent": condition.agent})

    @property
    def base(self) -> RunConfig:
        return RunConfig(**self.run)

    def run_name(self, condition: Condition, seed: int) -> str:
        return f"{condition.name}-s{seed}"


def _condition(value: str, where: Path) -> Condition:
    if value in IMPROVERS:
        return Condition(value, value)
    path = (where.parent / value).resolve() if not Path(value).is_absolute() else Path(value)
    if not (path / "agent.toml").is_file():
        raise InputError(f"condition {value!r}: neither {', '.join(IMPROVERS)} nor an agent "
                         f"directory (no {path / 'agent.toml'})")
    return Condition(path.name, "self", str(path))


def load_spec(path: Path) -> ExperimentSpec:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such experiment file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    body = dict(data.get("experiment", {}))
    plan = dict(data.get("plan", {}))
    unknown = sorted(set(data) - {"experiment", "plan"})
    unknown += sorted(set(body) - _RUN_KEYS - {"name", "conditions", "seeds"})
    unknown += sorted(f"plan.{k}" for k in set(plan) - _PLAN_KEYS)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}; [experiment] knows "
                         f"name, conditions, seeds, {', '.join(sorted(_RUN_KEYS))}; [plan] "
                         f"knows {', '.join(sorted(_PLAN_KEYS))}")
    conditions = tuple(_condition(str(c), path) for c in body.pop("conditions", IMPROVERS))
    names = [c.name for c in conditions]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"{path}: conditions must be distinct and non-empty, got {names}")
    seeds = tuple(int(s) for s in body.pop("seeds", (0,)))
    if len(set(seeds)) != len(seeds) or not seeds:
        raise InputError(f"{path}: seeds must be distinct and non-empty, got {list(seeds)}")
    name = str(body.pop("name", path.stem))
    run = RunConfig(**body)  # validates every run option once, with the loop's own checks
    # the normalised values ("docker:runsc" is sandbox "docker" with runtime "runsc")
    given = set(body) | ({"runtime"} if run.runtime else set())
    return ExperimentSpec(name, {k: v for k, v in run.__dict__.items() if k in given},
                          conditions, seeds, PlanAssumptions(**plan))


def default_parallel_runs(per_run_concurrency: int) -> int:
    """Runs at once that the machine holds: cores / each run's solve concurrency, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, per_run_concurrency))
