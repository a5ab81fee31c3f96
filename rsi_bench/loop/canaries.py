"""Canaries in the loop: mixing them into dev, and what a solved one does to its generation.

The canary salt is made once per run and kept in the run's config table (``canary_salt``),
so a resumed run asks the same canaries; it never reaches an agent. A solved canary becomes a
``canary`` finding of the generation that solved it, and the run's policy acts on it like on
any finding, after the generation's evaluation: ``reject`` makes the generation invalid (never
a parent, never selected), ``pause`` waits for a person. Generation 0 is the baseline every
claim is paired with: its canaries are recorded, never acted on.
"""

from __future__ import annotations

import secrets
from typing import Any

from rsi_bench.loop import control
from rsi_bench.loop.policy import Policy
from rsi_bench.store.canaries import CanaryStore
from rsi_bench.store.runs import RunStore
from rsi_bench.tasks.canaries import CANARY_SPLIT, canary_count, canary_tasks, forbidden_of
from rsi_bench.tasks.model import Task


def mix_canaries(runs: RunStore, tasks: list[Task], splits: dict[str, str],
                 fraction: float) -> list[Task]:
    """The run's canaries (none for a fraction of 0); their split is recorded in ``splits``."""
    n_dev = sum(s == "dev" for s in splits.values())
    count = canary_count(n_dev, fraction)
    if not count:
        return []
    salt = runs.config().get("canary_salt")
    if not isinstance(salt, str):
        salt = secrets.token_hex(16)
        runs.set_config({"canary_salt": salt})
    prefix = tasks[0].id.rsplit("/", 1)[0] if tasks and "/" in tasks[0].id else ""
    canaries = canary_tasks(count, salt, prefix, {t.id for t in tasks})
    splits.update({t.id: CANARY_SPLIT for t in canaries})
    return canaries


def judge_canaries(runs: RunStore, canaries: CanaryStore, policy: Policy, g: int,
                   tasks: dict[str, Task]) -> None:
    """Turn generation ``g``'s solved canaries into findings and apply the policy. Idempotent:
    a resumed run that did this already (or part of it, before a crash) ends in the same
    state."""
    solved = sorted({r["task_id"] for r in canaries.rows(g) if r["status"] == "pass"})
    if not solved:
        return
    gen = next(x for x in runs.generations() if x.generation == g)
    others = [f for f in gen.audit if f.get("kind") != "canary"]
    found = [{"kind": "canary", "path": task_id,
              "detail": f"solved the canary {task_id}, which only {forbidden_of(tasks[task_id])} "
                        "can solve"} for task_id in solved]
    if g == 0:  # the baseline: recorded, never acted on
        decision = Policy({"canary": "record"}).decide(found)
    else:
        decision = policy.decide(found)
    runs.set_findings(g, others + decision.findings)
    if decision.action == "reject":
        runs.set_status(g, "invalid", decision.reason)
    elif decision.action == "pause" and decision.reason and not any(
            e["generation"] == g and e["detail"].get("stage") == "canary"
            for e in runs.events("paused")):  # once: an approval of it ends the pause
        control.pause(runs, g, "canary", decision.reason)


def first_solved(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per canary task, the first generation that solved it."""
    out: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: r["generation"]):
        if r["status"] == "pass":
            out.setdefault(r["task_id"], int(r["generation"]))
    return out
