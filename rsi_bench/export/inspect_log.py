"""Export a run as Inspect AI eval logs: one log per generation, readable by
``inspect_ai.log.read_eval_log`` and viewable with ``inspect view``.

A generation's log holds one sample per (task, sample) result: the task's prompt as input (never
its hidden tests or reference), the agent's solution as output, the judge's verdict as a C/I
score, and the solve-role model calls the agent made for that task as model events. Samples of
the same task map to Inspect epochs (sample k is epoch k + 1). Results are accuracy per split.

``inspect_ai`` is an optional dependency (``rsi-bench[inspect]``), imported only inside
functions, so ``rsi-bench`` runs without it and says what to install when it is needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsi_bench import __version__
from rsi_bench.errors import InputError, RsiBenchError
from rsi_bench.export.inspect_sample import (
    SCORER,
    generate_config,
    iso,
    make_sample,
    params_of,
    short_id,
    usage_by_model,
)
from rsi_bench.export.run_reader import CallRow, GenerationRow, RunReader, find_runs

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample

    from rsi_bench.tasks.model import Task

SPLITS = ("dev", "heldout", "sealed")  # the order metrics are listed in
FORMATS = ("eval", "json")
STATUS = {"evaluated": "success", "created": "started", "invalid": "error"}
NOT_REAL = {  # providers whose "model" is not a real model, and what each one is
    "simulated": "simulated model: a deterministic stand-in for tests and demos, not a real "
                 "model",
    "synthetic": "synthetic run: verdicts are generated with known probabilities; no agent, "
                 "judge or model ran",
}
Warn = Callable[[str], None]


@dataclass(frozen=True)
class ExportedLog:
    """What was written for one generation."""

    path: Path
    seed: int
    generation: int
    status: str  # the log's Inspect status: success | started | error
    samples: int
    accuracy: dict[str, float]  # per split, and "all"


def require_inspect() -> str:
    """The installed inspect_ai version; an InputError naming the extra if it is missing."""
    try:
        import inspect_ai
    except ImportError:
        raise InputError("exporting Inspect logs needs inspect-ai: "
                         "pip install 'rsi-bench[inspect]'") from None
    return str(inspect_ai.__version__)


def export_inspect(run: Path, out: Path | None = None, *, fmt: str = "eval",
                   warn: Warn | None = None) -> list[ExportedLog]:
    """Write one Inspect log per generation of ``run`` into ``out`` (default RUN/inspect-logs).

    A multi-seed run directory gets one subdirectory of logs per seed. The run's store is only
    read, so a run still in progress can be exported; its unfinished generation's log has status
    ``started``. Re-exporting overwrites the same file names.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown log format {fmt!r}; known: {', '.join(FORMATS)}")
    runs = find_runs(run)
    for run_dir in runs:  # bad input is reported before a missing extra
        with RunReader(run_dir) as reader:
            reader.config()
    out = out if out is not None else default_out_dir(run)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory")
    require_inspect()
    from inspect_ai.log import write_eval_log

    written: list[ExportedLog] = []
    for run_dir in runs:
        target = out / run_dir.name if len(runs) > 1 else out
        with RunReader(run_dir) as reader:
            logs = run_logs(reader, warn or (lambda message: None))
        target.mkdir(parents=True, exist_ok=True)
        for log in logs:
            path = target / f"{_log_name(log)}.{fmt}"
            write_eval_log(log, str(path), format=fmt)  # type: ignore[arg-type]
            meta = log.eval.metadata or {}
            written.append(ExportedLog(path, meta["seed"], meta["generation"], log.status,
                                       len(log.samples or []), _accuracy_of(log)))
    return written


def default_out_dir(run: Path) -> Path:
    """Where logs go by default: ``inspect-logs`` inside the run directory."""
    return (run.parent if run.is_file() else run) / "inspect-logs"


def run_logs(reader: RunReader, warn: Warn) -> list[EvalLog]:
    """The Inspect logs of one run directory, one per generation, in generation order."""
    config = reader.config()
    run_config: dict[str, Any] = config["run"]
    tasks = _suite_tasks(str(run_config.get("suite", "")), warn)
    generations = reader.generations()
    # stable across re-exports, distinct for two runs of the same config
    run_id = short_id(config.get("fingerprint", ""),
                      generations[0].created_at if generations else "")
    sealed_done = reader.has_event("sealed")
    return [generation_log(reader, config, g, tasks, run_id, sealed_done) for g in generations]


def _suite_tasks(suite: str, warn: Warn) -> dict[str, Task]:
    """The run's tasks by id; empty (with a warning) if the suite cannot be loaded here."""
    from rsi_bench.tasks import load_suite

    try:
        return {t.id: t for t in load_suite(suite)}
    except (RsiBenchError, ImportError, OSError) as exc:
        warn(f"suite {suite!r} cannot be loaded here ({exc}); samples will have no prompts")
        return {}


def generation_log(reader: RunReader, config: dict[str, Any], gen: GenerationRow,
                   tasks: dict[str, Task], run_id: str, sealed_done: bool) -> EvalLog:
    """The Inspect log of one generation; ``sealed_done``: the run has scored its sealed split
    (it writes a ``sealed`` event once that is over)."""
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalError,
        EvalLog,
        EvalPlan,
        EvalPlanStep,
        EvalRevision,
        EvalSpec,
        EvalStats,
    )

    rc: dict[str, Any] = config["run"]
    model = str(rc.get("model", "unknown"))
    seed = int(rc.get("seed", 0))
    results = reader.results(gen.generation)
    solve_calls = reader.calls(gen.generation, "solve")
    # the smoke solve that validated a child ran before its generation row was written
    validation = [c for c in solve_calls if gen.generation > 0 and c.created_at < gen.created_at]
    skip = {c.id for c in validation}
    by_task: dict[str, list[CallRow]] = {}
    for call in solve_calls:
        if call.id not in skip and call.task_id is not None:
            by_task.setdefault(call.task_id, []).append(call)
    per_task = {r.task_id: sum(x.task_id == r.task_id for x in results) for r in results}
    samples = [make_sample(r, tasks.get(r.task_id), by_task.get(r.task_id, []),
                       per_task[r.task_id], model, run_id) for r in results]

    status = STATUS.get(gen.status, "started")
    events = reader.events(gen.generation)
    if status == "success" and any(r.split == "sealed" for r in results) and not sealed_done:
        status = "started"  # the sealed split is still being scored
    first_params = next((params_of(c) for c in solve_calls), {})
    task_name = f"{_label(str(rc.get('suite', 'suite')))}-gen{gen.generation}"
    ids = sorted({r.task_id for r in results})
    improve = reader.calls(gen.generation, "improve")
    tags = ["rsi-bench", f"seed-{seed}", f"improver-{gen.improver}", f"gen-{gen.generation}"]
    metadata = {
        "rsi_bench_version": __version__, "run_dir": str(reader.run_dir), "seed": seed,
        "generation": gen.generation, "parent": gen.parent, "improver": gen.improver,
        "generation_status": gen.status, "reason": gen.reason, "commit": gen.commit_sha,
        "config_fingerprint": config.get("fingerprint"), "suite": rc.get("suite"),
        "audit": gen.audit, "events": events, "run_config": rc,
        "improve_usage": _usage_summary(improve),
        "validation_usage": _usage_summary(validation),
    }
    provider = model.split("/", 1)[0]
    if provider in NOT_REAL:
        metadata["note"] = NOT_REAL[provider]
        tags.append(f"{provider}-model")
    spec = EvalSpec(
        eval_id=short_id(run_id, "eval", gen.generation), run_id=run_id,
        created=iso(gen.created_at), task=task_name,
        task_id=short_id(run_id, "task", gen.generation),
        task_display_name=f"{rc.get('suite')} gen {gen.generation} (seed {seed})",
        task_description=f"rsi-bench generation {gen.generation}: {gen.improver} improver, "
                         f"parent {gen.parent if gen.parent is not None else '-'}",
        task_args={"suite": rc.get("suite"), "limit": rc.get("limit"),
                   "generation": gen.generation},
        solver="rsi-bench agent", solver_args={"generation": gen.generation},
        tags=tags, dataset=EvalDataset(name=str(rc.get("suite")), location=str(rc.get("suite")),
                                       samples=len(ids), sample_ids=ids, shuffled=False),
        model=model, model_generate_config=generate_config(first_params),
        config=EvalConfig(limit=rc.get("limit"), epochs=int(rc.get("samples", 1))),
        revision=(EvalRevision(type="git", origin=str(reader.run_dir / "agents"),
                               commit=gen.commit_sha) if gen.commit_sha else None),
        packages={"rsi-bench": __version__, "inspect_ai": require_inspect()},
        metadata=metadata,
    )
    plan = EvalPlan(name="rsi-bench", steps=[EvalPlanStep(
        solver="agent.solve", params={"generation": gen.generation, "commit": gen.commit_sha,
                                      "sandbox": rc.get("sandbox"),
                                      "solve_timeout": rc.get("solve_timeout")})])
    ended = max([r.created_at for r in results], default=gen.evaluated_at or gen.created_at)
    stats = EvalStats(started_at=iso(gen.created_at),
                      completed_at=iso(gen.evaluated_at or ended),
                      model_usage=usage_by_model(
                          [c for calls in by_task.values() for c in calls], model))
    error = None
    if status == "error":
        message = f"invalid generation: {gen.reason or 'no reason recorded'}"
        error = EvalError(message=message, traceback=message, traceback_ansi=message)
    return EvalLog(status=status, eval=spec, plan=plan,  # type: ignore[arg-type]
                   results=_results(samples, status, int(rc.get("samples", 1))),
                   stats=stats, error=error, samples=samples)


def _results(samples: list[EvalSample], status: str, epochs: int) -> Any:
    """Accuracy per split and over all samples (a sample passes when its score is C)."""
    from inspect_ai.log import EvalMetric, EvalResults, EvalScore, HeadlineMetric

    if status == "error" and not samples:
        return None
    counts: dict[str, list[int]] = {}
    for s in samples:
        passed = int(s.scores is not None and s.scores[SCORER].value == "C")
        for key in (str(s.metadata["split"]), "all"):
            entry = counts.setdefault(key, [0, 0])
            entry[0] += passed
            entry[1] += 1
    order = [k for k in SPLITS if k in counts] + sorted(set(counts) - {*SPLITS, "all"})
    metrics = {k: EvalMetric(name=k, group="accuracy", value=counts[k][0] / counts[k][1])
               for k in [*order, "all"] if k in counts}
    headline = "heldout" if "heldout" in metrics else next(iter(metrics), None)
    score = EvalScore(name=SCORER, scorer=SCORER, reducer="mean" if epochs > 1 else None,
                      scored_samples=len(samples), unscored_samples=0, metrics=metrics,
                      metadata={"passed": {k: v[0] for k, v in counts.items()},
                                "samples": {k: v[1] for k, v in counts.items()}})
    return EvalResults(total_samples=len(samples), completed_samples=len(samples),
                       scores=[score], headline=HeadlineMetric(scorer=SCORER, metric=headline)
                       if headline else None)


def _accuracy_of(log: EvalLog) -> dict[str, float]:
    if log.results is None or not log.results.scores:
        return {}
    return {k: float(m.value) for k, m in log.results.scores[0].metrics.items()}


def _usage_summary(calls: list[CallRow]) -> dict[str, Any]:
    ok = [c for c in calls if c.status == "ok" and not c.cache_hit]
    return {"calls": len(calls), "answered": sum(c.status == "ok" for c in calls),
            "tokens": sum(c.input_tokens + c.output_tokens + c.cache_read_tokens
                          + c.cache_write_tokens for c in ok),
            "cost_usd": round(sum(c.cost_usd or 0.0 for c in ok), 6)}


def _label(suite: str) -> str:
    """A suite name as a task name: a directory suite by its base name, no separators."""
    name = Path(suite).name if ("/" in suite and not suite.startswith("hf:")) else suite
    return re.sub(r"[^A-Za-z0-9.:-]+", "-", name).strip("-") or "suite"


def _log_name(log: EvalLog) -> str:
    """Inspect's own ``{created}_{task}_{id}`` file name, so listings parse it."""
    created = log.eval.created[:19].replace(":", "-")
    task = log.eval.task.replace("_", "-").replace(":", "-")
    return f"{created}_{task}_{log.eval.task_id}"


