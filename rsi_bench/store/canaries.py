"""Canary outcomes (``canary_results``), kept out of ``results`` so that no score, statistic
or feedback that reads results can ever count one."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from rsi_bench.store import Store, StoreError
from rsi_bench.store.runs import insert_sandbox_events


class CanaryStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, generation: int, task_id: str, sample: int, status: str, solve_status: str,
            detail: str, solution: str | None,
            events: list[dict[str, str]] | None = None) -> None:
        """``events``: the solve's sandbox events, committed with the outcome."""
        with self.store.write(durable=False) as db:
            try:
                db.execute(
                    "INSERT INTO canary_results (generation, task_id, sample, status, "
                    "solve_status, detail, solution, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (generation, task_id, sample, status, solve_status, detail, solution,
                     time.time()))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"canary result for generation {generation}, task {task_id}, "
                                 f"sample {sample} is already recorded") from exc
            insert_sandbox_events(db, events or [], generation=generation, role="solve",
                                  task_id=task_id, split="canary", sample=sample)

    def rows(self, generation: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM canary_results", ()
        if generation is not None:
            sql, args = sql + " WHERE generation = ?", (generation,)  # type: ignore[assignment]
        return [dict(r) for r in self.store.read().execute(
            sql + " ORDER BY generation, task_id, sample", args)]

    def done(self, generation: int) -> set[tuple[str, int]]:
        return {(r["task_id"], r["sample"]) for r in self.rows(generation)}
