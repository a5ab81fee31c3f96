"""Making a child: choose its parent, run the improver, audit the child, apply the findings
policy, validate it, and commit it to the lineage or record it invalid (its diff kept). A part
of ``Loop`` (``rsi_bench/loop/runner.py``), which holds the state these steps share."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsi_bench.agents.audit import audit, diff_text
from rsi_bench.agents.container import run_improve
from rsi_bench.agents.job_events import job_rows
from rsi_bench.agents.manifest import load_manifest
from rsi_bench.agents.tree import copy_agent
from rsi_bench.agents.validate import validate_child
from rsi_bench.broker import Broker
from rsi_bench.infra import InfraFailure, InfraRetry
from rsi_bench.loop import control
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.lineage import Lineage, gen_name
from rsi_bench.loop.policy import Decision, Policy
from rsi_bench.loop.strategy import Candidate, choose_parent
from rsi_bench.sandbox import Limits
from rsi_bench.store.canaries import CanaryStore
from rsi_bench.store.runs import RunStore
from rsi_bench.tasks.model import Task


class ChildSteps:
    # the run's state, set by Loop
    config: RunConfig
    run_dir: Path
    runs: RunStore
    canaries: CanaryStore
    lineage: Lineage
    tasks: list[Task]
    splits: dict[str, str]
    broker: Broker
    limits: Limits
    infra: InfraRetry
    policy: Policy
    label: str
    progress: Callable[[str, dict[str, Any]], None]
    _plan: Callable[[], dict[str, Any]]

    def _make_child(self, g: int) -> None:
        gens = self.runs.generations()
        scores = self.runs.dev_scores()
        children = {x.generation: sum(y.parent == x.generation for y in gens) for x in gens}
        candidates = [Candidate(x.generation, scores.get(x.generation, 0.0),
                                children[x.generation]) for x in gens if x.status == "evaluated"]
        parent = choose_parent(self.config.strategy, candidates, seed=self.config.seed,
                               generation=g)
        parent_dir, child_dir = self.lineage.path(parent), self.lineage.path(g)
        self.progress("improve", {"generation": g, "parent": parent})
        status, reason, decision, times, events = self.infra.run(
            lambda: self._improve_and_validate(parent, parent_dir, child_dir, g),
            what="improve", generation=g, parent=parent)
        findings = decision.findings
        if status != "ok":
            self._keep_diff(g, parent_dir, child_dir)
            shutil.rmtree(child_dir, ignore_errors=True)
            self.runs.add_generation(g, parent, self.config.improver, None, findings,
                                     "invalid", reason, *times, events=events)
            self.progress("invalid", {"generation": g, "reason": reason,
                                      "skipped": self._plan()["per_generation"]})
            return
        sha = self.lineage.commit(g, parent, f"generation {g}: {self.config.improver} "
                                  f"improver on generation {parent}")
        self.runs.add_generation(g, parent, self.config.improver, sha, findings, "created",
                                 None, *times, events=events)
        if decision.action == "pause" and decision.reason:
            control.pause(self.runs, g, "audit", decision.reason)

    def _improve_and_validate(self, parent: int, parent_dir: Path, child_dir: Path, g: int
                              ) -> tuple[str, str | None, Decision,
                                         tuple[float | None, float | None],
                                         list[dict[str, str]]]:
        """One attempt at generation ``g``: improve, audit, the findings policy, validate.
        Status, reason, the policy's decision (with the findings), the improve's (agent,
        model) seconds and its sandbox events (never seen by the policy); ``InfraFailure``
        when the host saw the improve or the validation fail outside the agent."""
        shutil.rmtree(child_dir, ignore_errors=True)  # what a killed or failed attempt left
        status, reason, findings, times, events = self._improve(parent, parent_dir,
                                                                child_dir, g)
        if status == "ok":
            findings += [f.to_dict() for f in audit(
                parent_dir, child_dir, load_manifest(parent_dir),
                forbidden_strings=self._forbidden(),
                dev_tasks=[(t.id, t.prompt) for t in self.tasks
                           if self.splits[t.id] in ("dev", "canary")])]
        decision = self.policy.decide(findings)
        if status == "ok" and decision.action == "reject":
            status, reason = "invalid", decision.reason
        elif status == "ok":
            ok, why = validate_child(child_dir, smoke_task_view=self._smoke_task().view(),
                                     broker=self.broker, generation=g,
                                     backend=self.config.backend, limits=self.limits,
                                     timeout=self.config.solve_timeout, run_label=self.label,
                                     model_cap=self.config.model_time_cap)
            status, reason = ("ok", None) if ok else ("invalid", why)
        return status, reason, decision, times, events

    def _hold(self, g: int) -> None:
        """Stop at a paused generation until a person decides; apply a rejection."""
        state, reason = control.pause_state(self.runs, g)
        if state == "paused":
            raise control.Paused(self.run_dir, g, reason)
        if state == "rejected" and self._status(g) != "invalid":
            self.runs.set_status(g, "invalid", f"rejected by a person after a pause: {reason}")

    def _status(self, g: int) -> str:
        return {x.generation: x.status for x in self.runs.generations()}[g]

    def _keep_diff(self, g: int, parent_dir: Path, child_dir: Path) -> None:
        """An invalid child is not committed to the lineage; its diff is kept for the
        safety card (``rejected/gNNNN.diff``)."""
        if child_dir.is_dir():
            path = self.run_dir / "rejected" / f"{gen_name(g)}.diff"
            path.parent.mkdir(exist_ok=True)
            path.write_text(diff_text(parent_dir, child_dir))

    def _improve(self, parent: int, parent_dir: Path, child_dir: Path, g: int
                 ) -> tuple[str, str | None, list[dict[str, Any]],
                            tuple[float | None, float | None], list[dict[str, str]]]:
        improver = self.config.improver
        if improver == "noop":
            copy_agent(parent_dir, child_dir)
            return "ok", None, [], (None, None), []
        # canaries look like dev tasks here too: nothing tells the improver which they are
        rows: list[dict[str, Any]] = [dict(r) for r in self.runs.results(parent)
                                      if r["split"] == "dev"]
        feedback = [{"task_id": r["task_id"], "status": r["status"], "detail": r["detail"]}
                    for r in sorted([*rows, *self.canaries.rows(parent)],
                                    key=lambda r: (r["task_id"], r["sample"]))]
        # the fixed improver is generation 0's committed files, not the seed directory, which
        # could change on disk (or hold what the lineage does not record) during the run
        improver_dir = self.lineage.path(0) if improver == "fixed" else parent_dir
        outcome = run_improve(parent_dir, child_dir, feedback, broker=self.broker, generation=g,
                              backend=self.config.backend, limits=self.limits,
                              timeout=self.config.improve_timeout, run_label=self.label,
                              improver_dir=improver_dir, model_cap=self.config.model_time_cap)
        if outcome.infra:
            raise InfraFailure(outcome.infra)
        findings = [f.to_dict() for f in outcome.events]
        return (outcome.status, (outcome.detail or None), findings,
                (outcome.agent_s, outcome.model_s), job_rows(outcome))

    def _smoke_task(self) -> Task:
        return next(t for t in self.tasks if self.splits[t.id] == "dev")

    def _forbidden(self) -> list[str]:
        """Held-out and sealed ids, prompts and every hidden test: must not enter an agent."""
        hidden = [t for t in self.tasks if self.splits[t.id] in ("heldout", "sealed")]
        return ([t.id for t in hidden] + [t.prompt for t in hidden]
                + [t.tests for t in self.tasks])
