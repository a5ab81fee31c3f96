"""The run store: versioned migrations, WAL, and the model_calls table."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from rsi_bench.store import Store, StoreError, migrations
from rsi_bench.store.model_calls import CallRecord, export_jsonl, iter_calls, record_call


def call(n: int, status: str = "ok") -> CallRecord:
    completion = {"text": f"answer {n}", "stop_reason": "stop", "cost_usd": 0.5,
                  "latency_s": 0.1, "model_id": "openai/gpt-4o",
                  "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_tokens": 0,
                            "cache_write_tokens": 0}} if status == "ok" else None
    return CallRecord(role="solve", model="openai/gpt-4o", request_hash=f"h{n}",
                      request={"messages": [{"role": "user", "content": f"q{n}"}]},
                      status=status, task_id="t", generation=1, completion=completion)


def test_migrations_run_once_and_the_store_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Store(path) as store:
        assert store.version == len(migrations.MIGRATIONS)
        record_call(store, call(1))
    with Store(path) as again:  # reopening applies nothing twice and keeps the data
        assert [c.request_hash for c in iter_calls(again)] == ["h1"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [
        (len(migrations.MIGRATIONS),)]


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        Store(path)


def test_a_failed_migration_changes_nothing(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    import rsi_bench.store as store_module

    monkeypatch.setattr(store_module, "MIGRATIONS", migrations.MIGRATIONS)
    with pytest.raises(RuntimeError):
        Store(tmp_path / "run.sqlite")
    db = sqlite3.connect(tmp_path / "run.sqlite")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables and "model_calls" not in tables


def test_calls_round_trip_and_export(tmp_path: Path) -> None:
    with Store(tmp_path / "run.sqlite") as store:
        for n, status in ((1, "ok"), (2, "refused"), (3, "ok")):
            record_call(store, call(n, status))
        calls = list(iter_calls(store))
        lines = [json.loads(line) for line in export_jsonl(store)]
    assert [c.status for c in calls] == ["ok", "refused", "ok"]
    assert calls[0].completion is not None and calls[0].completion["text"] == "answer 1"
    assert [line["request_hash"] for line in lines] == ["h1", "h3"]
    assert lines[0]["schema_version"] == 2 and lines[0]["completion"]["usage"]["output_tokens"] == 4
    # schema 2: who each call was made for, and the cache key replay looks it up by
    assert {"sample", "split", "cache_key"} <= set(lines[0])


def test_a_store_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is not a directory"):
        Store(tmp_path / "no" / "run.sqlite")


def test_a_thread_reader_is_closed_when_its_thread_ends(tmp_path: Path) -> None:
    """The broker answers each agent connection in a new thread; their readers must not pile
    up as open files over a long run."""
    store = Store(tmp_path / "run.sqlite")
    db_file = str(tmp_path / "run.sqlite")

    def open_files() -> int:
        return sum(os.readlink(f"/proc/self/fd/{fd}").startswith(db_file)
                   for fd in os.listdir("/proc/self/fd") if _link(fd))

    def read() -> None:
        store.read().execute("SELECT COUNT(*) FROM model_calls").fetchone()

    before = open_files()
    for _ in range(50):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    gc.collect()
    assert open_files() - before <= 3  # at most one thread's reader (db, wal, shm) lingers
    read()  # the main thread's reader still works, and is closed with the store
    store.close()
    assert open_files() == 0


def _link(fd: str) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
        return True
    except OSError:
        return False


def test_dev_scores_count_dev_results_only(tmp_path: Path) -> None:
    from rsi_bench.store.runs import RunStore

    with Store(tmp_path / "run.sqlite") as store:
        runs = RunStore(store)
        for g in (0, 1, 2):
            runs.add_generation(g, None if g == 0 else 0, "self", None, [], "created")
        rows = [(0, "a", "dev", "pass"), (0, "b", "dev", "fail"), (0, "c", "heldout", "pass"),
                (1, "a", "dev", "pass"), (1, "b", "dev", "pass"), (2, "c", "heldout", "pass")]
        for g, task, split, status in rows:
            runs.add_result(g, task, 0, split, status, "ok", "", "x", 0.0, 0.0, {})
        assert runs.dev_scores() == {0: 0.5, 1: 1.0}  # generation 2 has no dev result


def test_a_store_of_schema_3_gains_agent_and_model_time(tmp_path: Path) -> None:
    """m004: results and generations written before it keep their rows, with no times; new
    rows record them."""
    from rsi_bench.store.runs import RunStore

    path = tmp_path / "run.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version (version) VALUES (3)")
    for migration in migrations.MIGRATIONS[:3]:
        migration(db)
    db.execute("INSERT INTO generations (generation, parent, improver, status, created_at) "
               "VALUES (0, NULL, 'seed', 'evaluated', 0)")
    db.execute("INSERT INTO results (generation, task_id, sample, split, status, solve_status, "
               "created_at) VALUES (0, 'old', 0, 'dev', 'pass', 'ok', 0)")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.version == len(migrations.MIGRATIONS)
        runs = RunStore(store)
        runs.add_generation(1, 0, "self", None, [], "created", None, 3.5, 20.0)
        runs.add_result(1, "new", 0, "dev", "fail", "ok", "", None, 30.0, 0.1, {}, 4.0, 26.0)
        times = {r["task_id"]: (r["agent_s"], r["model_s"]) for r in runs.results()}
        assert times == {"old": (None, None), "new": (4.0, 26.0)}
        runs.add_result(1, "repo", 0, "dev", "fail", "ok", "", "diff", 1.0, 0.1, {},
                        tests={"tests/test_a.py::test_x": "failed"})
        tests = {r["task_id"]: json.loads(r["tests_json"]) for r in runs.results()}
        assert tests == {"old": {}, "new": {}, "repo": {"tests/test_a.py::test_x": "failed"}}
        gens = {g.generation: (g.improve_agent_s, g.improve_model_s)
                for g in runs.generations()}
        assert gens == {0: (None, None), 1: (3.5, 20.0)}
