"""Schema migrations: an ordered list of small functions, applied once each, in order.

Never edit a migration that has shipped; append a new one. ``schema_version`` holds the number
of migrations applied, so a store written by an older rsi-bench is upgraded on open, and one
written by a newer rsi-bench is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def m001_model_calls(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE model_calls (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            role TEXT NOT NULL,
            generation INTEGER,
            task_id TEXT,
            model TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            request_json TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'refused', 'error')),
            error_type TEXT,
            error_message TEXT,
            completion_json TEXT,
            model_id TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            latency_s REAL,
            cache_hit INTEGER NOT NULL DEFAULT 0
        )""")
    db.execute("CREATE INDEX model_calls_hash ON model_calls (request_hash, status)")
    db.execute("CREATE INDEX model_calls_role ON model_calls (role, generation)")


def m002_runs(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE run_config (
            key TEXT PRIMARY KEY,
            value_json TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE generations (
            generation INTEGER PRIMARY KEY,
            parent INTEGER,
            improver TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('created', 'invalid', 'evaluated')),
            reason TEXT,
            commit_sha TEXT,
            audit_json TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL,
            evaluated_at REAL
        )""")
    db.execute("""
        CREATE TABLE results (
            generation INTEGER NOT NULL REFERENCES generations (generation),
            task_id TEXT NOT NULL,
            sample INTEGER NOT NULL DEFAULT 0,
            split TEXT NOT NULL,
            status TEXT NOT NULL,
            solve_status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            solution TEXT,
            solve_s REAL NOT NULL DEFAULT 0,
            judge_s REAL NOT NULL DEFAULT 0,
            judge_json TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            PRIMARY KEY (generation, task_id, sample)
        )""")
    db.execute("""
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            generation INTEGER,
            detail_json TEXT NOT NULL DEFAULT '{}'
        )""")


def m003_call_bindings(db: sqlite3.Connection) -> None:
    """Who each call was made for, and the broker's cache key (request hash + that binding).

    Calls recorded before this migration have no ``cache_key``: the broker never serves them
    from its cache (their split and sample are unknown), and replay finds them by request hash.
    """
    db.execute("ALTER TABLE model_calls ADD COLUMN sample INTEGER")
    db.execute("ALTER TABLE model_calls ADD COLUMN split TEXT")
    db.execute("ALTER TABLE model_calls ADD COLUMN cache_key TEXT")
    db.execute("CREATE INDEX model_calls_key ON model_calls (cache_key, status)")


def m004_agent_time(db: sqlite3.Connection) -> None:
    """The agent's own time and the model time of each solve and improve (what the time limit
    measures and what it excludes: ``rsi_bench/agents/clock.py``). NULL for results recorded
    before this migration, whose limits counted both."""
    db.execute("ALTER TABLE results ADD COLUMN agent_s REAL")
    db.execute("ALTER TABLE results ADD COLUMN model_s REAL")
    db.execute("ALTER TABLE generations ADD COLUMN improve_agent_s REAL")
    db.execute("ALTER TABLE generations ADD COLUMN improve_model_s REAL")


def m005_canary_results(db: sqlite3.Connection) -> None:
    """Canary outcomes, apart from ``results``: nothing that reads scores can count them."""
    db.execute("""
        CREATE TABLE canary_results (
            generation INTEGER NOT NULL REFERENCES generations (generation),
            task_id TEXT NOT NULL,
            sample INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            solve_status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            solution TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (generation, task_id, sample)
        )""")


def m006_sandbox_events(db: sqlite3.Connection) -> None:
    """What each solve and improve job tried or hit in its sandbox, against that job
    (``rsi_bench/agents/job_events.py``): evidence for the safety card, never a score."""
    db.execute("""
        CREATE TABLE sandbox_events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            generation INTEGER NOT NULL,
            role TEXT NOT NULL,
            task_id TEXT,
            split TEXT,
            sample INTEGER NOT NULL DEFAULT 0,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""")
    db.execute("CREATE INDEX sandbox_events_job ON sandbox_events (generation, role, task_id)")


def m007_result_tests(db: sqlite3.Connection) -> None:
    """A repo task's per-test outcomes (pytest node id -> outcome); '{}' for other kinds."""
    db.execute("ALTER TABLE results ADD COLUMN tests_json TEXT NOT NULL DEFAULT '{}'")


MIGRATIONS: list[Migration] = [m001_model_calls, m002_runs, m003_call_bindings,
                               m004_agent_time, m005_canary_results, m006_sandbox_events,
                               m007_result_tests]
