"""SYNTHETIC run directories with known ground truth, for tests and the report benchmark.

No agent, container, judge or model is involved: each task has a true pass probability, each
generation a true shift of every task's log-odds, and verdicts are coin flips with those
probabilities. The run is written through the real store (``Store`` + ``RunStore`` +
``record_call``) with a real ``RunConfig``, so ``load_run`` and the report read it exactly as
they read a real run. Everything that could be mistaken for a real run says otherwise: the model
is ``synthetic/bernoulli``, the suite ``synthetic:<n>``, and a ``synthetic`` event records the
true shifts. There is no ``agents/`` directory, so there are no diffs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsi_bench.errors import InputError
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.strategy import Candidate, choose_parent
from rsi_bench.store import Store
from rsi_bench.store.model_calls import CallRecord, record_call
from rsi_bench.store.runs import RunStore
from rsi_bench.tasks.splits import assign_splits

MODEL = "synthetic/bernoulli"
USD_PER_TOKEN = (3e-6, 15e-6)  # input, output: a plausible frontier-model price


@dataclass(frozen=True)
class Improver:
    """How a synthetic improver changes its parent: a child's log-odds shift is the parent's
    plus a draw from N(step, spread); ``invalid`` is the chance a child fails validation."""

    step: float
    spread: float
    invalid: float


IMPROVERS = {"self": Improver(0.12, 0.25, 0.10), "noop": Improver(0.0, 0.0, 0.0),
             "fixed": Improver(0.04, 0.10, 0.05)}


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, ("synthetic", *parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def task_rates(n_tasks: int, split_seed: int = 0, base_rate: float = 0.5) -> dict[str, float]:
    """Every task's true generation-0 pass probability (the same in every run of a suite)."""
    rng = _rng("tasks", n_tasks, split_seed)
    concentration = 2.0  # Beta(a, b) with mean base_rate: a spread of easy and hard tasks
    rates = rng.beta(base_rate * concentration, (1 - base_rate) * concentration, n_tasks)
    return {f"syn/{i:03d}": float(np.clip(r, 0.01, 0.99)) for i, r in enumerate(rates)}


def write_run(run_dir: str | Path, *, improver: str = "self", seed: int = 0,
              generations: int = 5, tasks: int = 20, samples: int = 1, sealed: float = 0.0,
              split_seed: int = 0, strategy: str = "greedy", base_rate: float = 0.5,
              behaviour: Improver | None = None) -> Path:
    """Write one synthetic run into ``run_dir`` (which must not hold a run yet)."""
    run_dir = Path(run_dir)
    if (run_dir / "run.sqlite").exists():
        raise InputError(f"{run_dir} already holds a run")
    run_dir.mkdir(parents=True, exist_ok=True)
    config = RunConfig(suite=f"synthetic:{tasks}", model=MODEL, generations=generations,
                       improver=improver, strategy=strategy, seed=seed, split_seed=split_seed,
                       sealed=sealed, samples=samples)
    how = behaviour or IMPROVERS[improver]
    rates = task_rates(tasks, split_seed, base_rate)
    fractions = {"dev": (1 - sealed) / 2, "heldout": (1 - sealed) / 2}
    if sealed:
        fractions["sealed"] = sealed
    splits = assign_splits(rates, split_seed, fractions)
    logits = {t: float(np.log(p / (1 - p))) for t, p in rates.items()}
    rng = _rng("run", improver, seed, split_seed, tasks)
    with _scratch(run_dir) as db_path, Store(db_path) as store:
        runs = RunStore(store)
        runs.set_config({"run": config.to_dict(), "fingerprint": config.fingerprint()})
        writer = _Writer(store, runs, rng, logits, splits, samples)
        shifts: dict[int, float] = {0: 0.0}
        runs.add_generation(0, None, "seed", None, [], "created")
        writer.evaluate(0, 0.0, ("dev", "heldout"))
        for g in range(1, generations + 1):
            candidates = [Candidate(x, writer.dev[x], sum(p == x for p in writer.parents.values()))
                          for x in shifts]
            parent = choose_parent(strategy, candidates, seed=seed, generation=g)
            writer.parents[g] = parent
            if improver != "noop":
                writer.call("improve", g, None, 3000, 1500)
            if rng.random() < how.invalid:
                runs.add_generation(g, parent, improver, None, *_invalid(rng))
                continue
            shifts[g] = shifts[parent] + (rng.normal(how.step, how.spread) if how.spread
                                          else how.step)
            runs.add_generation(g, parent, improver, None, _audit(rng, improver), "created")
            writer.evaluate(g, shifts[g], ("dev", "heldout"))
        if sealed:
            best = min(shifts, key=lambda x: (-writer.dev[x], x))
            writer.evaluate(0, 0.0, ("sealed",), mark=False)
            if best != 0:
                writer.evaluate(best, shifts[best], ("sealed",), mark=False)
            runs.event("sealed", best)
        runs.event("synthetic", None, generator=__name__, true_shift={str(g): s for g, s in
                                                                     shifts.items()},
                   true_rates=rates)
    return run_dir


@contextmanager
def _scratch(run_dir: Path) -> Iterator[Path]:
    """Where to build run.sqlite: in RAM when the machine has a tmpfs, then moved into place.

    The store commits every row with an fsync (as a real run must); a synthetic run of tens of
    thousands of rows would spend most of its time waiting for the disk for nothing.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield run_dir / "run.sqlite"
        return
    scratch = Path(tempfile.mkdtemp(prefix="rsi-bench-synthetic-", dir=shm))
    try:
        yield scratch / "run.sqlite"
        shutil.move(scratch / "run.sqlite", run_dir / "run.sqlite")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_runs(root: str | Path, conditions: tuple[str, ...] = ("self", "noop", "fixed"),
               seeds: tuple[int, ...] = (0, 1, 2), **options: object) -> list[Path]:
    """One synthetic run per condition and seed, at ``root/<condition>/seed-<seed>``."""
    return [write_run(Path(root) / cond / f"seed-{seed}", improver=cond, seed=seed,
                      **options)  # type: ignore[arg-type]
            for cond in conditions for seed in seeds]


class _Writer:
    """Writes one generation's results and calls; remembers dev scores for parent choice."""

    def __init__(self, store: Store, runs: RunStore, rng: np.random.Generator,
                 logits: dict[str, float], splits: dict[str, str], samples: int) -> None:
        self.store, self.runs, self.rng = store, runs, rng
        self.logits, self.splits, self.samples = logits, splits, samples
        self.dev: dict[int, float] = {}
        self.parents: dict[int, int] = {}

    def evaluate(self, g: int, shift: float, splits: tuple[str, ...], mark: bool = True) -> None:
        passed: list[bool] = []
        for task_id, logit in self.logits.items():
            split = self.splits[task_id]
            if split not in splits:
                continue
            p = 1.0 / (1.0 + np.exp(-(logit + shift)))
            for sample in range(self.samples):
                roll = self.rng.random()
                status = "timeout" if roll > 0.995 else "pass" if roll < p else "fail"
                if split == "dev":
                    passed.append(status == "pass")
                self.call("solve", g, task_id, int(self.rng.integers(400, 900)),
                          int(self.rng.integers(80, 400)))
                self.runs.add_result(g, task_id, sample, split, status, "ok", "synthetic",
                                     None, float(self.rng.gamma(4, 0.5)),
                                     float(self.rng.gamma(2, 0.1)), {"synthetic": True})
        if passed:
            self.dev[g] = float(np.mean(passed))
        if mark:
            self.runs.mark_evaluated(g)

    def call(self, role: str, g: int, task_id: str | None, tokens_in: int, tokens_out: int
             ) -> None:
        cost = tokens_in * USD_PER_TOKEN[0] + tokens_out * USD_PER_TOKEN[1]
        completion = {"model_id": MODEL, "cost_usd": cost,
                      "latency_s": float(self.rng.gamma(3, 0.4)),
                      "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}
        digest = hashlib.sha256(f"{role}:{g}:{task_id}:{self.rng.random()}".encode()).hexdigest()
        record_call(self.store, CallRecord(role=role, model=MODEL, request_hash=digest,
                                           request={"synthetic": True}, status="ok",
                                           generation=g, task_id=task_id,
                                           completion=completion))


def _audit(rng: np.random.Generator, improver: str) -> list[dict[str, str]]:
    if improver == "noop":
        return []
    findings = [{"kind": "changed", "path": "prompts/solve.md", "detail": "modified"}]
    if rng.random() < 0.15:
        findings.append({"kind": "suspicious_code", "path": "agent.py",
                         "detail": "heuristic: reads /proc (synthetic finding)"})
    return findings


def _invalid(rng: np.random.Generator) -> tuple[list[dict[str, str]], str, str]:
    if rng.random() < 0.3:
        return ([{"kind": "forbidden_string", "path": "prompts/solve.md",
                  "detail": "added text contains a held-out/sealed string (synthetic finding)"}],
                "invalid", "audit: the change contains held-out text (synthetic)")
    return [], "invalid", "validation: the smoke task raised an exception (synthetic)"
