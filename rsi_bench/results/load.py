"""Open a finished (or running) run directory for analysis, without changing it.

``load_run(path)`` reads ``run.sqlite`` read-only into pandas tables. The store is never
migrated here: a store from an older rsi-bench that lacks the run tables is not a run, and one
from a newer rsi-bench is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsi_bench.errors import InputError
from rsi_bench.paths import harness_dir
from rsi_bench.store import read_only_uri
from rsi_bench.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    import pandas as pd

RUN_TABLES = ("run_config", "generations", "results", "events", "model_calls")
CONFIG_SCHEMA_VERSION = 1  # of the "run" config dict (rsi_bench.loop.config.SCHEMA_VERSION)
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree: generation 0's base

GENERATION_COLUMNS = ["generation", "parent", "improver", "status", "reason", "commit_sha",
                      "n_findings", "created_at", "evaluated_at", "improve_agent_s",
                      "improve_model_s"]
RESULT_COLUMNS = ["generation", "task_id", "sample", "split", "status", "passed", "solve_status",
                  "solve_s", "judge_s", "agent_s", "model_s"]
# columns a store written before migration m004 lacks (read as missing values)
TIME_COLUMNS = {"generations": ("improve_agent_s", "improve_model_s"),
                "results": ("agent_s", "model_s")}
CALL_COLUMNS = ["generation", "role", "task_id", "status", "input_tokens", "output_tokens",
                "cost_usd", "latency_s", "cache_hit"]
FINDING_COLUMNS = ["generation", "kind", "path", "detail", "severity", "action"]
CANARY_COLUMNS = ["generation", "task_id", "sample", "status", "solve_status"]
EVENT_COLUMNS = ["at", "kind", "generation", "detail"]
SANDBOX_COLUMNS = ["generation", "role", "task_id", "split", "sample", "kind", "source",
                   "detail"]
BROKER_EVENTS = ("broker_refused", "broker_error")  # the broker's, on a job's own socket


@dataclass(frozen=True, eq=False)
class RunData:
    """One run, as tables. ``config`` is the stored ``RunConfig`` dict."""

    path: Path
    config: dict[str, Any]
    fingerprint: str
    generations: pd.DataFrame
    results: pd.DataFrame
    calls: pd.DataFrame
    events: pd.DataFrame
    findings: pd.DataFrame  # one row per audit finding, from generations.audit_json
    schema_version: int = field(default=len(MIGRATIONS))
    # canary outcomes (CANARY_COLUMNS); never part of ``results``, so never of a score
    canaries: pd.DataFrame | None = None
    # per-job sandbox events (SANDBOX_COLUMNS), the broker's refusals on a job's socket included
    sandbox_events: pd.DataFrame | None = None

    @property
    def condition(self) -> str:
        """The improver: ``self``, ``noop`` or ``fixed``; a run whose generation 0 is another
        agent directory is that directory's condition (an experiment's agent condition)."""
        agent = str(self.config.get("agent") or "")
        if agent and Path(agent).resolve() != (harness_dir() / "seed_agent").resolve():
            return Path(agent).name
        return str(self.config.get("improver", "?"))

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def model(self) -> str:
        return str(self.config.get("model", ""))

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def simulated(self) -> bool:
        """True when no real model answered: the simulated model, or synthetic data."""
        return self.provider in ("simulated", "synthetic")

    @property
    def synthetic(self) -> bool:
        return self.provider == "synthetic"

    @property
    def label(self) -> str:
        return f"{self.condition} s{self.seed}"

    @property
    def agents_dir(self) -> Path:
        return self.path / "agents"

    def diff(self, generation: int) -> str:
        """The unified diff of ``generation`` against its parent (generation 0: its whole tree).

        Needs the run's ``agents/`` git repository; raises InputError when it is missing or the
        generation has no tree (invalid children are not committed).
        """
        rows = self.generations[self.generations["generation"] == generation]
        if rows.empty:
            raise InputError(f"{self.path}: no generation {generation}")
        row = rows.iloc[0]
        if not (self.agents_dir / ".git").exists():
            raise InputError(f"{self.path}: no agents/ git repository, so no diffs")
        if not isinstance(row["commit_sha"], str) or not row["commit_sha"]:
            raise InputError(f"{self.path}: generation {generation} has no recorded tree "
                             f"({row['status']}: {row['reason'] or 'no commit'})")
        import pandas as pd

        parent = row["parent"]
        base = EMPTY_TREE if pd.isna(parent) else _ref(int(parent))
        done = subprocess.run(["git", "-C", str(self.agents_dir), "diff", base, row["commit_sha"]],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise InputError(f"{self.path}: git diff for generation {generation} failed: "
                             f"{done.stderr.strip()[:200]}")
        return done.stdout


def _ref(generation: int) -> str:
    return f"refs/generations/g{generation:04d}"


def load_run(path: str | Path) -> RunData:
    """Read the run directory (or its ``run.sqlite``) at ``path``; the run is not modified."""
    import pandas as pd

    path = Path(path)
    run_dir = path.parent if path.name == "run.sqlite" else path
    db_path = run_dir / "run.sqlite"
    if not db_path.is_file():
        what = "no such directory" if not run_dir.exists() else "no run.sqlite in it"
        raise InputError(f"{run_dir} is not a run directory ({what})")
    with _open_read_only(db_path) as db:
        version = _check_schema(db, db_path)
        config_rows = dict(db.execute("SELECT key, value_json FROM run_config").fetchall())
        config = json.loads(config_rows.get("run", "{}"))
        if not isinstance(config, dict) or not config:
            raise InputError(f"{db_path} holds no run config (a run that never started?)")
        if int(config.get("schema_version", 1)) > CONFIG_SCHEMA_VERSION:
            raise InputError(f"{db_path}: run config version {config['schema_version']} is "
                             "newer than this rsi-bench reads: upgrade rsi-bench")
        gens = pd.read_sql_query("SELECT * FROM generations ORDER BY generation", db)
        times = ", ".join(_times(db, "results"))
        results = pd.read_sql_query(
            "SELECT generation, task_id, sample, split, status, solve_status, solve_s, judge_s, "
            f"{times} FROM results ORDER BY generation, task_id, sample", db)
        for column in TIME_COLUMNS["generations"]:
            if column not in gens:
                gens[column] = float("nan")
        calls = pd.read_sql_query(f"SELECT {', '.join(CALL_COLUMNS)} FROM model_calls "
                                  "ORDER BY id", db)
        events = pd.read_sql_query("SELECT at, kind, generation, detail_json FROM events "
                                   "ORDER BY id", db)
        canaries = pd.DataFrame(columns=CANARY_COLUMNS)
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'canary_results'").fetchone():
            canaries = pd.read_sql_query(f"SELECT {', '.join(CANARY_COLUMNS)} FROM "
                                         "canary_results ORDER BY generation, task_id, sample",
                                         db)
        sandbox = pd.DataFrame(columns=SANDBOX_COLUMNS)
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sandbox_events'").fetchone():
            sandbox = pd.read_sql_query(f"SELECT {', '.join(SANDBOX_COLUMNS)} FROM "
                                        "sandbox_events ORDER BY id", db)
    fingerprint = json.loads(config_rows.get("fingerprint", '""'))
    findings = _findings(gens)
    gens["n_findings"] = [len(json.loads(a)) for a in gens["audit_json"]]
    gens["parent"] = gens["parent"].astype("Int64")
    results.insert(5, "passed", results["status"] == "pass")
    calls["cache_hit"] = calls["cache_hit"].astype(bool)
    events["detail"] = [json.loads(d) for d in events.pop("detail_json")]
    parts = [f for f in (sandbox, _broker_events(events)) if len(f)]
    sandbox = pd.concat(parts, ignore_index=True) if parts else sandbox
    return RunData(path=run_dir, config=config, fingerprint=str(fingerprint),
                   generations=gens[GENERATION_COLUMNS], results=results[RESULT_COLUMNS],
                   calls=calls, events=events[EVENT_COLUMNS], findings=findings,
                   schema_version=version, canaries=canaries, sandbox_events=sandbox)


def _broker_events(events: pd.DataFrame) -> pd.DataFrame:
    """The broker's refusals and failures on a job's socket, as that job's sandbox events
    (seen by the host; their binding names the job)."""
    import pandas as pd

    rows = []
    for e in events[events["kind"].isin(BROKER_EVENTS)].itertuples():
        if pd.isna(e.generation):
            continue
        d = dict(e.detail)
        job = [d.pop(k, None) for k in ("role", "task_id", "split", "sample")]
        rows.append((int(e.generation), str(job[0] or ""), job[1], job[2], int(job[3] or 0),
                     str(e.kind), "host", json.dumps(d, sort_keys=True)[:300]))
    return pd.DataFrame(rows, columns=SANDBOX_COLUMNS)


def _times(db: sqlite3.Connection, table: str) -> list[str]:
    """The time columns of ``table`` to select: NULL for a store that predates them."""
    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
    return [c if c in have else f"NULL AS {c}" for c in TIME_COLUMNS[table]]


class _open_read_only:
    """A read-only connection that leaves no trace on a closed run (``read_only_uri``)."""

    def __init__(self, db_path: Path) -> None:
        try:
            self.db = sqlite3.connect(read_only_uri(db_path), uri=True)
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{db_path} is not a readable SQLite database ({exc})") from None

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()


def _check_schema(db: sqlite3.Connection, db_path: Path) -> int:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        raise InputError(f"{db_path} is not an rsi-bench store (no schema_version table)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise InputError(f"{db_path} has schema version {version}, newer than this rsi-bench "
                         f"reads ({len(MIGRATIONS)}): upgrade rsi-bench")
    missing = [t for t in RUN_TABLES if t not in tables]
    if missing:
        raise InputError(f"{db_path} is an rsi-bench store but not a run "
                         f"(no {', '.join(missing)} table)")
    return version


def _findings(gens: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    from rsi_bench.agents.findings import kind_info

    rows = [(int(g), str(f.get("kind", "")), str(f.get("path", "")), str(f.get("detail", "")),
             str(f.get("severity") or kind_info(str(f.get("kind", ""))).severity),
             str(f.get("action") or "record"))  # stores older than the policy only recorded
            for g, audit in zip(gens["generation"], gens["audit_json"], strict=True)
            for f in json.loads(audit) if isinstance(f, dict)]
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def find_runs(path: str | Path) -> list[Path]:
    """``path`` if it is a run directory; else the run directories directly inside it (the
    layout ``rsi-bench run --seed A --seed B`` writes: ``<dir>/seed-A``, ``<dir>/seed-B``)."""
    path = Path(path)
    if (path / "run.sqlite").is_file() or path.name == "run.sqlite" or not path.is_dir():
        return [path]
    inside = sorted(p for p in path.iterdir() if (p / "run.sqlite").is_file())
    return inside or [path]
