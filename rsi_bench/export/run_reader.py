"""A read-only view of a run's store, for exporters.

The store is opened with SQLite's ``mode=ro``: an export never writes to, migrates or locks a
run, so it can read a run that another process is still writing. Every read happens inside one
read transaction, so the export sees a single consistent snapshot of that run. (A WAL-mode store
that no process has open has no ``-wal``/``-shm`` files; SQLite creates them, empty, for any
reader, read-only ones included. They hold no data and the next writer reuses them.)
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rsi_bench.errors import InputError
from rsi_bench.store import read_only_uri
from rsi_bench.store.migrations import MIGRATIONS

STORE_NAME = "run.sqlite"
RUN_TABLES = ("run_config", "generations", "results", "model_calls", "events")


@dataclass(frozen=True)
class GenerationRow:
    """One row of ``generations``."""

    generation: int
    parent: int | None
    improver: str
    status: str  # created | invalid | evaluated
    reason: str | None
    commit_sha: str | None
    audit: list[dict[str, Any]]
    created_at: float
    evaluated_at: float | None


@dataclass(frozen=True)
class ResultRow:
    """One row of ``results``: the verdict on one sample of one task."""

    generation: int
    task_id: str
    sample: int
    split: str
    status: str
    solve_status: str
    detail: str
    solution: str | None
    solve_s: float
    judge_s: float
    judge: dict[str, Any]
    created_at: float
    tests: dict[str, str] = field(default_factory=dict)  # a repo task's per-test outcomes


@dataclass(frozen=True)
class CallRow:
    """One row of ``model_calls``; the usage columns say what the call spent (0 on a cache hit)."""

    id: int
    created_at: float
    role: str
    generation: int | None
    task_id: str | None
    model: str
    request: dict[str, Any]
    status: str  # ok | refused | error
    error_type: str | None
    error_message: str | None
    completion: dict[str, Any] | None
    model_id: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float | None
    latency_s: float | None
    cache_hit: bool


def find_runs(path: Path) -> list[Path]:
    """The run directories at ``path``: the run itself, or each ``seed-*`` run of a multi-seed
    run (``rsi-bench run --seed 1 --seed 2``). ``path`` may also be a run's ``run.sqlite``."""
    if path.is_file() and path.name == STORE_NAME:
        return [path.parent]
    if not path.is_dir():
        raise InputError(f"{path}: no such run directory")
    if (path / STORE_NAME).is_file():
        return [path]
    seeds = sorted((p for p in path.glob("seed-*") if (p / STORE_NAME).is_file()),
                   key=lambda p: (len(p.name), p.name))
    if not seeds:
        raise InputError(f"{path} is not a run directory: it holds no {STORE_NAME}")
    return seeds


class RunReader:
    """Reads one run directory's store, read-only, as one snapshot. Use as a context manager."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir.resolve()
        self.db_path = self.run_dir / STORE_NAME
        if not self.db_path.is_file():
            raise InputError(f"{run_dir} is not a run directory: it holds no {STORE_NAME}")
        try:
            self._db = sqlite3.connect(read_only_uri(self.db_path), uri=True,
                                       isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise InputError(f"{self.db_path}: cannot open it read-only ({exc})") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("BEGIN")  # one snapshot for every read that follows
            self._check_schema()
        except sqlite3.Error as exc:
            self._db.close()
            raise InputError(f"{self.db_path} cannot be read as an rsi-bench run store "
                             f"({exc})") from None
        except BaseException:
            self._db.close()
            raise

    def _check_schema(self) -> None:
        tables = {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in RUN_TABLES if t not in tables]
        if missing:
            raise InputError(f"{self.db_path} is not an rsi-bench run store: it has no "
                             f"{', '.join(missing)} table(s)")
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is not None and row[0] > len(MIGRATIONS):
            raise InputError(f"{self.db_path} has schema version {row[0]}, newer than this "
                             f"rsi-bench knows ({len(MIGRATIONS)}): upgrade rsi-bench")

    def config(self) -> dict[str, Any]:
        """The ``run_config`` table: ``run`` (the RunConfig dict) and ``fingerprint``."""
        rows = self._db.execute("SELECT key, value_json FROM run_config").fetchall()
        config = {r["key"]: json.loads(r["value_json"]) for r in rows}
        if not isinstance(config.get("run"), dict):
            raise InputError(f"{self.db_path} holds no run configuration: the run never started")
        return config

    def generations(self) -> list[GenerationRow]:
        rows = self._db.execute("SELECT * FROM generations ORDER BY generation").fetchall()
        return [GenerationRow(r["generation"], r["parent"], r["improver"], r["status"],
                              r["reason"], r["commit_sha"], json.loads(r["audit_json"]),
                              r["created_at"], r["evaluated_at"]) for r in rows]

    def results(self, generation: int) -> list[ResultRow]:
        rows = self._db.execute("SELECT * FROM results WHERE generation = ? "
                                "ORDER BY task_id, sample", (generation,)).fetchall()
        return [ResultRow(r["generation"], r["task_id"], r["sample"], r["split"], r["status"],
                          r["solve_status"], r["detail"], r["solution"], r["solve_s"],
                          r["judge_s"], json.loads(r["judge_json"]), r["created_at"],
                          json.loads(r["tests_json"]) if "tests_json" in r.keys() else {})
                for r in rows]

    def calls(self, generation: int, role: str) -> list[CallRow]:
        """The model calls one role made for one generation, in the order they were made."""
        rows = self._db.execute("SELECT * FROM model_calls WHERE generation = ? AND role = ? "
                                "ORDER BY id", (generation, role)).fetchall()
        return [_call(r) for r in rows]

    def events(self, generation: int) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT at, kind, detail_json FROM events WHERE generation = ? "
                                "ORDER BY id", (generation,)).fetchall()
        return [{"at": r["at"], "kind": r["kind"], "detail": json.loads(r["detail_json"])}
                for r in rows]

    def has_event(self, kind: str) -> bool:
        """Whether the run recorded an event of this kind (for any generation)."""
        return self._db.execute("SELECT 1 FROM events WHERE kind = ? LIMIT 1",
                                (kind,)).fetchone() is not None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _call(r: sqlite3.Row) -> CallRow:
    request = json.loads(r["request_json"])
    completion = json.loads(r["completion_json"]) if r["completion_json"] else None
    return CallRow(
        id=r["id"], created_at=r["created_at"], role=r["role"], generation=r["generation"],
        task_id=r["task_id"], model=r["model"],
        request=request if isinstance(request, dict) else {"raw": request},
        status=r["status"], error_type=r["error_type"], error_message=r["error_message"],
        completion=completion if isinstance(completion, dict) else None,
        model_id=r["model_id"], input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
        cache_read_tokens=r["cache_read_tokens"], cache_write_tokens=r["cache_write_tokens"],
        cost_usd=r["cost_usd"], latency_s=r["latency_s"], cache_hit=bool(r["cache_hit"]))
