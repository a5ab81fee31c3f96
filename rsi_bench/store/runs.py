"""The run's own tables: its config, its generations, their per-task results and events.

Every write is one transaction: a result is either fully recorded or not at all, so a run
killed at any moment resumes from exactly the work that was committed (DESIGN invariant 5).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from rsi_bench.store import Store, StoreError

EVENT_FIELDS = ("kind", "source", "detail")


def insert_sandbox_events(db: sqlite3.Connection, events: list[dict[str, str]], *,
                          generation: int, role: str, task_id: str | None = None,
                          split: str | None = None, sample: int = 0) -> None:
    """A job's sandbox events (``rsi_bench.agents.job_events``), in the caller's transaction:
    they are committed with the job's own record, or not at all."""
    at = time.time()
    db.executemany(
        "INSERT INTO sandbox_events (at, generation, role, task_id, split, sample, kind, "
        "source, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(at, generation, role, task_id, split, sample,
          *(str(e.get(k, "")) for k in EVENT_FIELDS)) for e in events])


@dataclass(frozen=True)
class Generation:
    generation: int
    parent: int | None
    improver: str
    status: str
    reason: str | None
    commit_sha: str | None
    audit: list[dict[str, Any]]
    improve_agent_s: float | None = None  # the improve's own time, and its model time
    improve_model_s: float | None = None


class RunStore:
    """Typed access to a run's tables, over the shared ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- config: written once; a resumed run must match it
    def config(self) -> dict[str, Any]:
        rows = self.store.read().execute("SELECT key, value_json FROM run_config").fetchall()
        return {r["key"]: json.loads(r["value_json"]) for r in rows}

    def set_config(self, config: dict[str, Any]) -> None:
        with self.store.write() as db:
            for key, value in config.items():
                db.execute("INSERT INTO run_config (key, value_json) VALUES (?, ?)",
                           (key, json.dumps(value, sort_keys=True)))

    # -- generations
    def add_generation(self, generation: int, parent: int | None, improver: str,
                       commit_sha: str | None, audit: list[dict[str, Any]], status: str,
                       reason: str | None = None, improve_agent_s: float | None = None,
                       improve_model_s: float | None = None,
                       events: list[dict[str, str]] | None = None) -> None:
        """``events``: the improve's sandbox events, committed with the generation."""
        with self.store.write() as db:
            db.execute(
                "INSERT INTO generations (generation, parent, improver, status, reason, "
                "commit_sha, audit_json, created_at, improve_agent_s, improve_model_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (generation, parent, improver, status, reason, commit_sha,
                 json.dumps(audit, sort_keys=True), time.time(), improve_agent_s,
                 improve_model_s))
            insert_sandbox_events(db, events or [], generation=generation, role="improve")

    def mark_evaluated(self, generation: int) -> None:
        with self.store.write() as db:
            db.execute("UPDATE generations SET status = 'evaluated', evaluated_at = ? "
                       "WHERE generation = ?", (time.time(), generation))

    def set_status(self, generation: int, status: str, reason: str | None) -> None:
        """A decision made after the generation was recorded: a person's rejection of a
        paused child, or the policy's on a canary its evaluation solved."""
        with self.store.write() as db:
            db.execute("UPDATE generations SET status = ?, reason = ? WHERE generation = ?",
                       (status, reason, generation))

    def set_findings(self, generation: int, findings: list[dict[str, Any]]) -> None:
        with self.store.write() as db:
            db.execute("UPDATE generations SET audit_json = ? WHERE generation = ?",
                       (json.dumps(findings, sort_keys=True), generation))

    def generations(self) -> list[Generation]:
        rows = self.store.read().execute(
            "SELECT * FROM generations ORDER BY generation").fetchall()
        return [Generation(r["generation"], r["parent"], r["improver"], r["status"],
                           r["reason"], r["commit_sha"], json.loads(r["audit_json"]),
                           r["improve_agent_s"], r["improve_model_s"])
                for r in rows]

    # -- results
    def add_result(self, generation: int, task_id: str, sample: int, split: str, status: str,
                   solve_status: str, detail: str, solution: str | None, solve_s: float,
                   judge_s: float, judge: dict[str, Any], agent_s: float | None = None,
                   model_s: float | None = None,
                   events: list[dict[str, str]] | None = None,
                   tests: dict[str, str] | None = None) -> None:
        """``events``: the solve's sandbox events, committed with the result; ``tests``: a repo
        task's per-test outcomes (``Verdict.test_outcomes``). Not fsynced (see
        ``Store.write``): after a power cut, a resumed run solves the lost results again, and
        their model calls, committed durably, come back from the cache."""
        with self.store.write(durable=False) as db:
            try:
                db.execute(
                    "INSERT INTO results (generation, task_id, sample, split, status, "
                    "solve_status, detail, solution, solve_s, judge_s, judge_json, created_at, "
                    "agent_s, model_s, tests_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (generation, task_id, sample, split, status, solve_status, detail,
                     solution, solve_s, judge_s, json.dumps(judge, sort_keys=True), time.time(),
                     agent_s, model_s, json.dumps(tests or {})))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"result for generation {generation}, task {task_id}, sample "
                                 f"{sample} is already recorded: resume would duplicate work"
                                 ) from exc
            insert_sandbox_events(db, events or [], generation=generation, role="solve",
                                  task_id=task_id, split=split, sample=sample)

    def dev_scores(self) -> dict[int, float]:
        """Mean pass rate on the dev split, per generation that has dev results."""
        rows = self.store.read().execute(
            "SELECT generation, AVG(status = 'pass') FROM results WHERE split = 'dev' "
            "GROUP BY generation")
        return {int(g): float(score) for g, score in rows}

    def done(self, generation: int) -> set[tuple[str, int]]:
        rows = self.store.read().execute(
            "SELECT task_id, sample FROM results WHERE generation = ?", (generation,))
        return {(r["task_id"], r["sample"]) for r in rows}

    def results(self, generation: int | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM results"
        args: tuple[Any, ...] = ()
        if generation is not None:
            sql, args = sql + " WHERE generation = ?", (generation,)
        return self.store.read().execute(sql + " ORDER BY generation, task_id, sample",
                                         args).fetchall()

    def sandbox_events(self, generation: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM sandbox_events", ()
        if generation is not None:
            sql, args = sql + " WHERE generation = ?", (generation,)  # type: ignore[assignment]
        return [dict(r) for r in self.store.read().execute(sql + " ORDER BY id", args)]

    def event(self, kind: str, generation: int | None = None, **detail: Any) -> None:
        with self.store.write() as db:
            db.execute("INSERT INTO events (at, kind, generation, detail_json) VALUES (?, ?, ?, ?)",
                       (time.time(), kind, generation, json.dumps(detail, sort_keys=True)))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events", ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)  # type: ignore[assignment]
        rows = self.store.read().execute(sql + " ORDER BY id", args).fetchall()
        return [{"at": r["at"], "kind": r["kind"], "generation": r["generation"],
                 "detail": json.loads(r["detail_json"])} for r in rows]
