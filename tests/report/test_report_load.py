"""load_run: a run directory read-only into tables; anything that is not a run is refused."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

import rsi_bench
from rsi_bench.errors import InputError
from rsi_bench.results.load import find_runs, load_run
from rsi_bench.results.synthetic import write_run
from rsi_bench.store import Store
from rsi_bench.store.migrations import MIGRATIONS, m001_model_calls


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (agents/ included) with its content hash."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_exported_from_the_package() -> None:
    assert rsi_bench.load_run is load_run


def test_hand_run_tables(hand_run: Path) -> None:
    run = load_run(hand_run)
    assert run.condition == "self" and run.seed == 0 and run.config["suite"] == "hand:12"
    assert run.simulated and run.synthetic
    gens = run.generations
    assert list(gens.columns) == ["generation", "parent", "improver", "status", "reason",
                                  "commit_sha", "n_findings", "created_at", "evaluated_at",
                                  "improve_agent_s", "improve_model_s"]
    assert gens["improve_model_s"].tolist()[3] == 10.0 and gens["improve_agent_s"].isna()[1]
    assert gens["generation"].tolist() == [0, 1, 2, 3]
    assert gens["status"].tolist() == ["evaluated", "evaluated", "invalid", "evaluated"]
    assert gens["parent"].tolist()[1:] == [0, 1, 1]
    assert gens["n_findings"].tolist() == [0, 0, 2, 0]
    assert list(run.results.columns) == ["generation", "task_id", "sample", "split", "status",
                                         "passed", "solve_status", "solve_s", "judge_s",
                                         "agent_s", "model_s"]
    assert set(run.results["agent_s"]) == {0.25} and set(run.results["model_s"]) == {2.0}
    assert len(run.results) == 3 * 12
    assert run.results["passed"].dtype == bool
    assert int(run.results["passed"].sum()) == (1 + 2 + 2) + (1 + 3 + 6)  # dev + held-out
    assert list(run.calls.columns) == ["generation", "role", "task_id", "status",
                                       "input_tokens", "output_tokens", "cost_usd",
                                       "latency_s", "cache_hit"]
    assert run.calls["cost_usd"].sum() == pytest.approx(0.13)
    assert run.findings["kind"].tolist() == ["changed", "forbidden_string"]


def test_a_store_older_than_the_time_columns_loads_them_as_missing(hand_run: Path,
                                                                  tmp_path: Path) -> None:
    """A store of schema 3 (before migration m004) has no agent or model time."""
    import shutil
    import sqlite3

    old = tmp_path / "old"
    shutil.copytree(hand_run, old)
    with sqlite3.connect(old / "run.sqlite") as db:
        for table, column in (("results", "agent_s"), ("results", "model_s"),
                              ("generations", "improve_agent_s"),
                              ("generations", "improve_model_s")):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("UPDATE schema_version SET version = 3")
    run = load_run(old)
    assert run.schema_version == 3 and len(run.results) == 3 * 12
    assert run.results["agent_s"].isna().all() and run.generations["improve_model_s"].isna().all()


def test_loading_changes_nothing(hand_run: Path) -> None:
    before = snapshot(hand_run)
    load_run(hand_run)
    load_run(hand_run / "run.sqlite")
    assert snapshot(hand_run) == before  # no -wal/-shm left behind, no byte changed


def test_diff_against_parent_from_git(hand_run: Path) -> None:
    run = load_run(hand_run)
    diff = run.diff(3)
    assert "-y" in diff and "+z" in diff  # generation 3 was made from generation 1
    assert "+x" in run.diff(0)  # generation 0 against the empty tree
    with pytest.raises(InputError, match="invalid"):
        run.diff(2)


def test_synthetic_run_loads_without_agents_dir(tmp_path: Path) -> None:
    path = write_run(tmp_path / "syn", generations=2, tasks=10)
    run = load_run(path)
    assert not (path / "agents").exists()
    assert set(run.results["split"]) == {"dev", "heldout"}
    assert run.events["kind"].tolist()[-1] == "synthetic"
    with pytest.raises(InputError, match="no agents/"):
        run.diff(0)


def test_find_runs_expands_a_directory_of_seeds(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_run(tmp_path / "exp" / f"seed-{seed}", seed=seed, generations=1, tasks=6)
    assert [p.name for p in find_runs(tmp_path / "exp")] == ["seed-0", "seed-1"]
    assert find_runs(tmp_path / "exp" / "seed-0") == [tmp_path / "exp" / "seed-0"]


# ------------------------------------------------------------------ bad input


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a run directory .no such directory"):
        load_run(tmp_path / "nowhere")


def test_directory_without_store(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no run.sqlite"):
        load_run(tmp_path)


def test_file_that_is_not_sqlite(tmp_path: Path) -> None:
    (tmp_path / "run.sqlite").write_text("hello, not a database\n" * 100)
    with pytest.raises(InputError, match="not a readable SQLite database"):
        load_run(tmp_path)


def test_sqlite_that_is_not_ours(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        db.execute("CREATE TABLE things (x)")
    with pytest.raises(InputError, match="not an rsi-bench store"):
        load_run(tmp_path)


def test_store_without_run_tables(tmp_path: Path) -> None:
    """A store from before the run tables existed (model calls only) is not a run."""
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        m001_model_calls(db)
    with pytest.raises(InputError, match="not a run .no run_config"):
        load_run(tmp_path)


def test_run_that_never_started(tmp_path: Path) -> None:
    Store(tmp_path / "run.sqlite").close()
    with pytest.raises(InputError, match="no run config"):
        load_run(tmp_path)


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path, hand_run: Path) -> None:
    shutil.copy(hand_run / "run.sqlite", tmp_path / "run.sqlite")
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 5,))
    with sqlite3.connect(tmp_path / "run.sqlite") as db:  # close cleanly: no -wal file
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match="newer than this rsi-bench reads"):
        load_run(tmp_path)
    assert snapshot(tmp_path) == before  # never migrated


def test_newer_config_version_is_refused(tmp_path: Path, hand_run: Path) -> None:
    shutil.copy(hand_run / "run.sqlite", tmp_path / "run.sqlite")
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        db.execute("UPDATE run_config SET value_json = json_set(value_json, "
                   "'$.schema_version', 9) WHERE key = 'run'")
    with pytest.raises(InputError, match="run config version 9"):
        load_run(tmp_path)


def test_a_live_run_is_read_while_its_writer_is_open(tmp_path: Path) -> None:
    from rsi_bench.store.runs import RunStore

    path = write_run(tmp_path / "live", generations=1, tasks=6)
    store = Store(path / "run.sqlite")  # the loop's writer, still open: a -wal file exists
    try:
        RunStore(store).event("progress", 1, note="still running")
        assert (path / "run.sqlite-wal").exists()
        run = load_run(path)
        assert run.events["kind"].tolist()[-1] == "progress"  # committed rows in the WAL
    finally:
        store.close()
