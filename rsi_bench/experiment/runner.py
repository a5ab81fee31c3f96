"""Run an experiment: every (condition, seed) as a run under one directory, one progress view,
one report. Re-running the same command resumes every run from its committed work.

Layout::

    DIR/experiment.json      the experiment as first started (a different file is refused)
    DIR/runs/<cond>-s<seed>/ one run directory each (run.sqlite, agents/; ray-attempts.jsonl
                             with --executor ray)
    DIR/report/              the report over all runs (rsi_bench.report)
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rsi_bench.errors import InputError
from rsi_bench.experiment.spec import Condition, ExperimentSpec
from rsi_bench.loop.runner import Row, run_once

SCHEMA_VERSION = 1
Echo = Callable[[str], None]


class ExperimentProgress:
    """One view over every run: a line per run event worth seeing and, every few results, the
    whole experiment's solves done, dollars spent and time left. Thread-safe."""

    def __init__(self, names: list[str], echo: Echo, *, every: int = 10) -> None:
        self.echo, self.every, self.start = echo, every, time.monotonic()
        self.state = {name: {"done": 0, "total": 0, "at_start": 0, "cost": 0.0}
                      for name in names}
        self._lock = threading.Lock()
        self._results = 0

    def for_run(self, name: str) -> Callable[[str, dict[str, Any]], None]:
        def progress(kind: str, info: dict[str, Any]) -> None:
            with self._lock:
                self._event(name, kind, info)
        return progress

    def _event(self, name: str, kind: str, info: dict[str, Any]) -> None:
        run = self.state[name]
        if kind == "start":
            run.update(done=info["done"], total=info["total"], at_start=info["done"],
                       cost=info["cost_usd"])
            self.echo(f"[{name}] started: {info['done']}/{info['total']} solves already done")
        elif kind == "result":
            run["done"] += 1
            run["cost"] = info.get("cost_usd", run["cost"])
            self._results += 1
            if self._results % self.every == 0:
                self.echo(self.summary())
        elif kind == "invalid":
            run["done"] += info.get("skipped", 0)
            self.echo(f"[{name}] generation {info['generation']}: invalid: {info['reason']}")
        elif kind == "improve":
            self.echo(f"[{name}] generation {info['generation']}: improving generation "
                      f"{info['parent']}")

    def finished(self, name: str) -> None:
        with self._lock:
            self.echo(f"[{name}] finished; {self.summary()}")

    def summary(self) -> str:
        done = sum(r["done"] for r in self.state.values())
        total = sum(r["total"] for r in self.state.values())
        worked = sum(r["done"] - r["at_start"] for r in self.state.values())
        cost = sum(r["cost"] for r in self.state.values())
        elapsed = time.monotonic() - self.start
        eta = ""
        if worked > 0 and total > done and all(r["total"] for r in self.state.values()):
            eta = f", about {int(elapsed / worked * (total - done))} s left"
        return (f"experiment: {done}/{total} solves (runs started so far), ${cost:.2f} spent, "
                f"{int(elapsed)} s elapsed{eta}")


def _manifest(spec: ExperimentSpec) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "name": spec.name,
            "runs": {spec.run_name(c, s): spec.run_config(c, s).fingerprint()
                     for c in spec.conditions for s in spec.seeds}}


def prepare(spec: ExperimentSpec, out_dir: Path) -> None:
    """Create the experiment directory, or check that it holds this same experiment."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "experiment.json"
    wanted = _manifest(spec)
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != wanted:
            differ = sorted(set(stored.get("runs", {})) ^ set(wanted["runs"])) or sorted(
                k for k in wanted["runs"] if stored.get("runs", {}).get(k) != wanted["runs"][k])
            raise InputError(f"{out_dir} holds a different experiment (runs that differ: "
                             f"{', '.join(differ) or 'name'}); use the same file or a new "
                             "directory")
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted, indent=2, sort_keys=True))
    tmp.replace(path)


def finished(rows: list[Row], generations: int) -> bool:
    """Every generation 0..G exists and none is still waiting to be evaluated."""
    return (len(rows) == generations + 1
            and all(r.status in ("evaluated", "invalid") for r in rows))


def run_all(spec: ExperimentSpec, out_dir: Path, *, parallel: int, echo: Echo) -> list[Path]:
    """Run (or resume) every (condition, seed); return the run directories in spec order.

    Runs go ``parallel`` at a time. A run that raises or returns before its last generation
    stops the experiment with one line naming it once the runs in flight end; the next
    invocation resumes it."""
    prepare(spec, out_dir)
    plan = [(c, s) for c in spec.conditions for s in spec.seeds]
    names = [spec.run_name(c, s) for c, s in plan]
    view = ExperimentProgress(names, echo)
    problems: dict[str, str] = {}

    def one(condition: Condition, seed: int) -> None:
        name = spec.run_name(condition, seed)
        config = spec.run_config(condition, seed)
        try:
            # `rsi-bench stop` on the experiment's directory stops every run in it
            rows = run_once(config, out_dir / "runs" / name, view.for_run(name),
                            stop_dirs=(out_dir,))
        except Exception as exc:  # per run: named, and the experiment stops after the others
            problems[name] = f"{type(exc).__name__}: {exc}"
            return
        if not finished(rows, config.generations):
            problems[name] = "it stopped before its last generation"
            return
        view.finished(name)

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        for future in [pool.submit(one, c, s) for c, s in plan]:
            future.result()
    return finished_runs(out_dir, names, problems)


def detectability(verdicts: dict[str, Any], planned_mde: float | None) -> list[str]:
    """Per condition: could this experiment as run have detected what it claims or rules out?"""
    lines = []
    for condition, v in verdicts.items():
        mde = v.mde
        size = "no gain" if mde is None else f"a gain of {100 * mde:.1f} points"
        planned = ("" if planned_mde is None or not math.isfinite(planned_mde)
                   else f" (planned: {100 * planned_mde:.1f} points)")
        if v.label in ("improved", "regressed"):
            if mde is not None and abs(v.effect) >= mde:
                why = (f"the effect of {100 * v.effect:+.1f} points is at least the minimum "
                       f"detectable effect of {100 * mde:.1f} points{planned}: an effect this "
                       "size is found in at least 80% of experiments like this one")
            else:
                why = (f"the effect of {100 * v.effect:+.1f} points is below the minimum "
                       f"detectable effect ({size}{planned}): effects this small are detected "
                       "in fewer than 80% of experiments like this, so its size is likely "
                       "overstated")
        elif mde is None:
            why = "this experiment could not detect any gain, so it rules nothing out"
        else:
            why = (f"this experiment would have detected {size}{planned} with 80% power, so "
                   "it rules out gains that large (at that power), not smaller ones")
        lines.append(f"- {condition}: {v.label}; {why}.")
    return lines


def finished_runs(out_dir: Path, names: list[str], problems: dict[str, str]) -> list[Path]:
    """The run directories, or one InputError naming the first run that did not finish."""
    if problems:
        first = next(n for n in names if n in problems)
        more = f" (and {len(problems) - 1} more run(s))" if len(problems) > 1 else ""
        raise InputError(f"run {first} did not finish: {problems[first]}{more}; its committed "
                         "work is kept: run the same command again to resume it")
    return [out_dir / "runs" / n for n in names]
