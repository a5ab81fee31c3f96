"""The self-improvement loop: evaluate generation 0, then improve, audit, validate and evaluate
one generation at a time. Every step is committed before the next, so re-running the same
command on the same run directory resumes exactly where it stopped.

Every solve, improve (with its validation) and judge job runs through ``InfraRetry``
(``rsi_bench/infra.py``): a failure outside the agent is an ``infra`` event and the job is run
again; never a score, never an invalid child. When its attempts are spent the run stops with
``RunStopped``, its committed work kept.
"""

from __future__ import annotations

import fcntl
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsi_bench.agents.checkout import agent_view
from rsi_bench.agents.job_events import job_rows
from rsi_bench.agents.pool import SolvePool
from rsi_bench.agents.tree import copy_agent
from rsi_bench.broker import Broker, Budget
from rsi_bench.broker.sampling import SEEDED_PROVIDERS, Sampling
from rsi_bench.broker.sampling import sampling_seed as sampling_seed  # re-exported
from rsi_bench.errors import InputError
from rsi_bench.infra import InfraFailure, InfraRetry, RunStopped, infra_counts
from rsi_bench.judge import Job, Judge
from rsi_bench.loop import control
from rsi_bench.loop.canaries import judge_canaries, mix_canaries
from rsi_bench.loop.children import ChildSteps
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.lineage import Lineage
from rsi_bench.loop.policy import Policy
from rsi_bench.models import get_model
from rsi_bench.sandbox import Limits
from rsi_bench.sandbox.admin import cleanup
from rsi_bench.store import Store
from rsi_bench.store.canaries import CanaryStore
from rsi_bench.store.runs import RunStore
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.model import Task
from rsi_bench.tasks.splits import assign_splits

Progress = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Row:
    generation: int
    status: str
    parent: int | None
    improver: str
    scores: dict[str, float]
    reason: str | None
    infra: int = 0  # jobs of this generation that failed outside the agent and ran again


class LoopBroker(Broker):
    """The broker with the loop's sampling (``rsi_bench.broker.sampling``: every generation and
    sample its own seed or draw, which nothing inside a container can override), the run's
    splits (so the cache tells them apart), and the dollars this process paid."""

    def __init__(self, *args: Any, loop_seed: int, seeded: bool, **kwargs: Any) -> None:
        super().__init__(*args, sampling=Sampling(loop_seed, seeded), **kwargs)
        self.loop_seed, self.seeded = loop_seed, seeded
        self.paid = 0.0  # dollars of the calls this process made (cache hits are free)
        self._paid_lock = threading.Lock()

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        answer = super().complete(*args, **kwargs)
        if not answer.cache_hit:
            with self._paid_lock:
                self.paid += answer.completion.cost_usd or 0.0
        return answer


def _model(config: RunConfig, tasks: list[Task]) -> Any:
    if config.model.split("/", 1)[0] == "simulated":
        from rsi_bench.models.simulated import sim_tasks

        return get_model(config.model, tasks=sim_tasks(tasks))
    return get_model(config.model)


class Loop(ChildSteps):
    """One run: its store, splits, broker, judges and kill switch; the generation loop and the
    evaluation of each generation. Making a child is ``ChildSteps`` (``children.py``)."""

    broker: LoopBroker

    def __init__(self, config: RunConfig, run_dir: Path, progress: Progress | None = None,
                 stop_dirs: tuple[Path, ...] = ()) -> None:
        self.config, self.run_dir = config, run_dir.resolve()
        run_dir = self.run_dir
        self.progress = progress or (lambda kind, info: None)
        self.switch = control.KillSwitch(run_dir, stop_dirs)  # rsi-bench stop, SIGTERM
        if not (config.agent_dir / "agent.toml").is_file():
            raise InputError(f"{config.agent_dir}: no agent.toml (an agent directory needs one)")
        run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = (run_dir / ".lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{run_dir} is in use by another rsi-bench run") from None
        self.switch.clear()  # a stop asked before this attempt was for the one it stopped
        self.store = Store(run_dir / "run.sqlite")
        self.runs = RunStore(self.store)
        self._check_config()
        suite = load_suite(config.suite)
        self.tasks = list(suite.tasks[: config.limit] if config.limit else suite.tasks)
        fractions = {"dev": (1 - config.sealed) / 2, "heldout": (1 - config.sealed) / 2}
        if config.sealed:
            fractions["sealed"] = config.sealed
        self.splits = assign_splits([t.id for t in self.tasks], config.split_seed, fractions)
        self.canaries = CanaryStore(self.store)
        canaries = mix_canaries(self.runs, self.tasks, self.splits, config.canaries)
        self.lineage = Lineage(run_dir / "agents")
        budgets = {role: Budget(**limits) for role, limits in  # type: ignore[arg-type]
                   config.budgets.items()}
        model = _model(config, self.tasks)  # real tasks only: no model knows a canary's answer
        self.tasks += canaries
        # a replay model reports the recorded model's name: seeding follows it, so replayed
        # requests hash exactly as they did when they were recorded
        self.broker = LoopBroker(model, self.store, budgets, concurrency=config.concurrency,
                                 loop_seed=config.seed, splits=self.splits,
                                 seeded=str(model.name).split("/", 1)[0] in SEEDED_PROVIDERS,
                                 dev_share=self._dev_share())
        self.limits = Limits()
        self.infra = InfraRetry(self.runs.event, lambda info: self.progress("infra", info))
        self._stopping = False  # a job's infra retries are spent: start no other job
        self.policy = Policy(config.on_finding)
        self._paid_before = float(self.store.read().execute(  # by earlier attempts of this run
            "SELECT COALESCE(SUM(cost_usd), 0) FROM model_calls WHERE cache_hit = 0"
        ).fetchone()[0])

    def _check_config(self) -> None:
        stored = self.runs.config()
        if not stored:
            self.runs.set_config({"run": self.config.to_dict(),
                                  "fingerprint": self.config.fingerprint()})
            return
        if stored.get("fingerprint") != self.config.fingerprint():
            fields = self.config.differences(stored.get("run", {}))
            raise InputError(f"{self.run_dir} holds a run made with a different config "
                             f"(differs in: {', '.join(fields)}); refusing to resume it — use "
                             "the same options, or a new --run-dir")

    # ------------------------------------------------------------------ the loop
    def run(self) -> list[Row]:
        self.switch.install()  # in the calling (main) thread: where handlers run
        try:
            return self.switch.run_watched(self._run)
        finally:
            self.switch.uninstall()

    def _run(self) -> list[Row]:
        label = f"run-{self.config.fingerprint()[:8]}-s{self.config.seed}"
        if self.config.sandbox == "docker":
            cleanup(label)  # containers a killed attempt of this run left behind
        # Dev and hidden (held-out, sealed) solutions never share a judge worker: whatever a
        # hidden job might leave in its sandbox can never surface in a dev verdict, which is
        # feedback. Each judge starts its workers on first use.
        self.judges = {group: Judge(self.config.backend, workers=self.config.concurrency,
                                    timeout=self.config.judge_timeout, run_label=label)
                       for group in ("dev", "hidden")}
        self.switch.on_hard_stop = lambda: self._hard_stop(label)
        try:
            self.label = label
            if not self.runs.generations():
                self._seed_generation()
            self.progress("start", self._plan())
            for g in range(0, self.config.generations + 1):
                self.switch.check()
                known = {gen.generation: gen for gen in self.runs.generations()}
                if g not in known:
                    self._make_child(g)
                self._hold(g)
                known = {gen.generation: gen for gen in self.runs.generations()}
                if known[g].status == "created":
                    self._evaluate(g, ("dev", "canary", "heldout"))
                    self.switch.check()  # a generation stopped mid-way is not evaluated
                    judge_canaries(self.runs, self.canaries, self.policy, g,
                                   {t.id: t for t in self.tasks})
                    if self._status(g) == "created":
                        self.runs.mark_evaluated(g)
                    self._hold(g)
            self._evaluate_sealed()
        finally:
            for judge in self.judges.values():
                judge.close()
        return self.table()

    def _hard_stop(self, label: str) -> None:
        """A second stop signal: the process exits now; its containers go with it."""
        if self.config.sandbox == "docker":
            cleanup(label)

    def _plan(self) -> dict[str, Any]:
        """The run's whole work in solves (dev and held-out, every generation; sealed at the
        end), and how much of it a resumed run already has."""
        per_gen = sum(self.splits[t.id] != "sealed" for t in self.tasks) * self.config.samples
        sealed = sum(self.splits[t.id] == "sealed" for t in self.tasks) * self.config.samples
        done = len(self.runs.results()) + len(self.canaries.rows())
        invalid = sum(g.status == "invalid" for g in self.runs.generations())
        return {"total": per_gen * (self.config.generations + 1) + 2 * sealed,
                "done": done + invalid * per_gen, "per_generation": per_gen,
                "cost_usd": self.spent()}

    def _dev_share(self) -> float:
        """Dev solves' share of all the solves the run plans (every generation's dev and
        held-out solves, the sealed ones twice): their share of the solve budget."""
        count = {split: sum(self.splits[t.id] == split for t in self.tasks)
                 for split in ("dev", "canary", "heldout", "sealed")}
        rounds = self.config.generations + 1
        dev = (count["dev"] + count["canary"]) * rounds  # canaries are solved as dev tasks
        total = dev + count["heldout"] * rounds + count["sealed"] * 2
        return dev / total if total else 1.0

    def spent(self) -> float:
        """Dollars paid to the model so far (cache hits and replays are free)."""
        return self._paid_before + self.broker.paid

    def _seed_generation(self) -> None:
        target = self.lineage.path(0)
        shutil.rmtree(target, ignore_errors=True)
        copy_agent(self.config.agent_dir, target)  # exactly what the lineage records
        sha = self.lineage.commit(0, None, "generation 0: the seed agent")
        self.runs.add_generation(0, None, "seed", sha, [], "created")

    def _evaluate(self, g: int, splits: tuple[str, ...]) -> None:
        done = self.runs.done(g) | self.canaries.done(g)
        todo = [(t, s) for t in self.tasks if self.splits[t.id] in splits
                for s in range(self.config.samples) if (t.id, s) not in done]
        self.progress("evaluate", {"generation": g, "todo": len(todo), "total": len(todo)})
        for group in ("dev", "hidden"):
            part = [(t, s) for t, s in todo if self._group(t) == group]
            if part:
                self._evaluate_group(g, part)

    def _group(self, task: Task) -> str:
        return "dev" if self.splits[task.id] in ("dev", "canary") else "hidden"

    def _evaluate_group(self, g: int, todo: list[tuple[Task, int]]) -> None:
        """Solve and judge tasks of one group in warm containers of their own: dev and hidden
        (held-out, sealed) tasks never share an agent container, nor a judge worker, so
        nothing a hidden solve might leave behind can surface in dev feedback."""
        with SolvePool(self.lineage.path(g), broker=self.broker, generation=g,
                       backend=self.config.backend, limits=self.limits,
                       timeout=self.config.solve_timeout, run_label=self.label,
                       workers=self.config.concurrency,
                       model_cap=self.config.model_time_cap) as agents:
            if self.config.concurrency == 1:
                for task, sample in todo:
                    self._solve_and_judge(g, agents, task, sample)
                return
            with ThreadPoolExecutor(self.config.concurrency) as pool:
                for _ in pool.map(lambda ts: self._solve_and_judge(g, agents, *ts), todo):
                    pass

    def _solve_and_judge(self, g: int, agents: SolvePool, task: Task, sample: int) -> None:
        if self._stopping or self.switch.stopping:  # no job starts; those in flight finish
            return
        try:
            self._solve_and_judge_once(g, agents, task, sample)
        except RunStopped:
            self._stopping = True
            raise

    def _solve(self, agents: SolvePool, task: Task, sample: int) -> Any:
        outcome = agents.solve(agent_view(task), sample)
        if outcome.infra:
            raise InfraFailure(outcome.infra)
        return outcome

    def _solve_and_judge_once(self, g: int, agents: SolvePool, task: Task, sample: int) -> None:
        where: dict[str, Any] = {"generation": g, "task_id": task.id, "sample": sample}
        outcome = self.infra.run(lambda: self._solve(agents, task, sample), what="solve",
                                 **where)
        judge_s, judge_info, status, detail = 0.0, {}, outcome.status, outcome.detail
        tests: dict[str, str] = {}
        if outcome.status == "ok" and outcome.solution is not None:
            job = Job(task, outcome.solution, sample)
            judge = self.judges[self._group(task)]
            verdict = self.infra.run(lambda: judge.judge_many([job])[0], what="judge", **where)
            status, detail, judge_s = verdict.status, verdict.detail, verdict.duration_s
            tests = verdict.test_outcomes
            judge_info = {"backend": verdict.backend, "image_id": verdict.image_id,
                          "runner_sha256": verdict.runner_sha256}
        elif status == "ok":
            status = "error"
        events = job_rows(outcome)  # evidence for the safety card, never part of a verdict
        if self.splits[task.id] == "canary":  # never a result: nothing that scores reads it
            self.canaries.add(g, task.id, sample, status, outcome.status, detail,
                              outcome.solution, events)
        else:
            self.runs.add_result(g, task.id, sample, self.splits[task.id], status,
                                 outcome.status, detail, outcome.solution, outcome.duration_s,
                                 judge_s, judge_info, outcome.agent_s, outcome.model_s, events,
                                 tests)
        self.progress("result", {"generation": g, "task_id": task.id, "status": status,
                                 "split": self.splits[task.id], "cost_usd": self.spent()})

    def _evaluate_sealed(self) -> None:
        """Score the sealed split once, at the end: on the selected generation (best dev score,
        ties to the earliest) and on generation 0, the baseline the final claim is paired with.
        Nothing about the sealed tasks reaches an agent or the selection."""
        if not any(s == "sealed" for s in self.splits.values()):
            return
        best = self.selected()
        for g in sorted({0, best}):
            self._evaluate(g, ("sealed",))
            self.switch.check()
        if not self.runs.events("sealed"):
            self.runs.event("sealed", best)

    def selected(self) -> int:
        """The generation a run puts forward: best dev score, ties to the earliest."""
        scores = self.runs.dev_scores()
        evaluated = [x.generation for x in self.runs.generations() if x.status == "evaluated"]
        return max(evaluated, key=lambda g: (scores.get(g, 0.0), -g))

    # ------------------------------------------------------------------ summary
    def table(self) -> list[Row]:
        per: dict[int, dict[str, list[int]]] = {}
        for r in self.runs.results():
            entry = per.setdefault(r["generation"], {}).setdefault(r["split"], [0, 0])
            entry[0] += r["status"] == "pass"
            entry[1] += 1
        infra = infra_counts(self.runs.events())
        return [Row(g.generation, g.status, g.parent, g.improver,
                    {s: p / n for s, (p, n) in per.get(g.generation, {}).items()}, g.reason,
                    infra.get(g.generation, 0))
                for g in self.runs.generations()]

    def close(self) -> None:
        self.store.close()
        self._lock.close()


def run_once(config: RunConfig, run_dir: Path, progress: Progress | None = None,
             **options: Any) -> list[Row]:
    """One run, start to finish (or resumed): what `rsi-bench run` does for each loop seed and
    `rsi-bench experiment` for each (condition, seed). ``options`` go to ``Loop``."""
    loop = Loop(config, run_dir, progress, **options)
    try:
        return loop.run()
    finally:
        loop.close()
