"""The self-improvement loop end to end, through the CLI, in Docker, with the simulated model."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sandboxes import DOCKER_RUNTIMES, require_backend

from rsi_bench.tasks import load_suite

pytestmark = pytest.mark.docker

BASE = ["--model", "simulated", "--suite", "rsi-core", "--limit", "8", "--concurrency", "2",
        "--solve-timeout", "15", "--improve-timeout", "60"]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def committed(run_dir: Path) -> int:
    """Rows a run has committed so far (results, generations, model calls); 0 before it has a
    store."""
    if not (run_dir / "run.sqlite").exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro",
                                                uri=True, timeout=5)) as db:
            return sum(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                       for table in ("results", "generations", "model_calls"))
    except sqlite3.OperationalError:  # the tables are not created yet
        return 0


def store_rows(run_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """The store's content without timestamps, latencies and row ids."""
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return {
            "generations": db.execute(
                "SELECT generation, parent, improver, status, reason, commit_sha, audit_json "
                "FROM generations ORDER BY generation").fetchall(),
            "results": db.execute(
                "SELECT generation, task_id, sample, split, status, solve_status, detail, "
                "solution FROM results ORDER BY generation, task_id, sample").fetchall(),
            # what was paid for: every call that reached the model, once each
            "paid_calls": sorted(db.execute(
                "SELECT role, generation, task_id, request_hash, status, completion_json "
                "FROM model_calls WHERE cache_hit = 0").fetchall()),
        }


@pytest.mark.parametrize("backend", DOCKER_RUNTIMES)
def test_self_run_end_to_end_with_real_diffs(tmp_path: Path, backend: str) -> None:
    require_backend(backend)
    run_dir = tmp_path / "run"
    runtime = backend.partition(":")[2] or "runc"
    done = cli("run", *BASE, "--generations", "5", "--improver", "self", "--seed", "3",
               "--run-dir", str(run_dir), "--runtime", runtime)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        judged_on = {json.loads(j).get("backend") for (j,) in db.execute(
            "SELECT judge_json FROM results WHERE judge_json != '{}'")}
    assert judged_on == {backend}  # every verdict says where it was judged
    rows = store_rows(run_dir)
    assert [g[0] for g in rows["generations"]] == [0, 1, 2, 3, 4, 5]
    evaluated = [g for g in rows["generations"] if g[3] == "evaluated"]
    assert len(evaluated) >= 2
    assert len(rows["results"]) == 8 * len(evaluated)
    # The lineage is a git history: a commit per valid generation, parented on its parent.
    agents = run_dir / "agents"
    changed = set()
    for _g, parent, _imp, status, _r, sha, _a in rows["generations"][1:]:
        if status != "evaluated":
            continue
        log = subprocess.run(["git", "-C", str(agents), "log", "--format=%H", sha],
                             capture_output=True, text=True, check=True).stdout.split()
        assert log[0] == sha and len(log) >= 2
        diff = subprocess.run(["git", "-C", str(agents), "diff", "--name-only",
                               f"refs/generations/g{parent:04d}", sha],
                              capture_output=True, text=True, check=True).stdout.split()
        changed.update(diff)
    assert changed & {"agent.py", "prompts/solve.md", "prompts/improve.md"}
    assert "gen  parent" in done.stdout and str(run_dir) in done.stdout


def test_leakage_scan_finds_no_held_out_task_in_any_request(tmp_path: Path) -> None:
    require_backend("docker")
    run_dir = tmp_path / "run"
    assert cli("run", *BASE, "--generations", "2", "--sealed", "0.25",
               "--run-dir", str(run_dir)).returncode == 0
    tasks = {t.id: t for t in list(load_suite("rsi-core"))[:8]}
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        splits = dict(db.execute("SELECT DISTINCT task_id, split FROM results"))
        calls = db.execute("SELECT role, task_id, request_json FROM model_calls").fetchall()
    hidden = [t for t in tasks.values() if splits.get(t.id) != "dev"]
    assert hidden and calls
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        sealed_gens = {g for (g,) in db.execute(
            "SELECT DISTINCT generation FROM results WHERE split = 'sealed'")}
        dev = dict(db.execute("SELECT generation, AVG(status = 'pass') FROM results "
                              "WHERE split = 'dev' GROUP BY generation"))
        evaluated = [g for (g,) in db.execute(
            "SELECT generation FROM generations WHERE status = 'evaluated'")]
    selected = max(evaluated, key=lambda g: (dev[g], -g))  # best dev, ties to the earliest
    assert sealed_gens == {0, selected}  # the final claim pairs the selected agent with g0
    for role, task_id, request in calls:
        for task in tasks.values():
            assert task.tests.strip() not in request  # hidden tests: never, anywhere
            # nor a second reference, raw or JSON-escaped as the request record stores text
            idiomatic = task.idiomatic_reference.strip()
            assert idiomatic not in request and json.dumps(idiomatic)[1:-1] not in request
        for task in hidden:
            if role == "solve" and task_id == task.id:
                continue  # solving a held-out task shows its own prompt, in its own container
            assert task.id not in request, (role, task_id, task.id)
            assert task.prompt.strip() not in request, (role, task_id, task.id)


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL at 10 points spread over the whole run, each resumed; the end is the store of
    an uninterrupted run. Each point is a count of committed rows, reached by the run itself
    (``kill_at.py``), so no timing decides whether a kill lands: every target lies below the
    reference's own count, which a resumed run reaches too (it records every row the reference
    has, and a cache hit for each call replayed)."""
    require_backend("docker")
    args = [*BASE, "--generations", "3", "--improver", "self", "--seed", "5"]
    reference = tmp_path / "reference"
    assert cli("run", *args, "--run-dir", str(reference)).returncode == 0
    total = committed(reference)
    assert total > 20
    killed = tmp_path / "killed"
    rng = random.Random(11)
    # 10 increasing targets, the first at 1 row (a kill at start-up), the rest spread out
    targets = [1, *sorted(rng.sample(range(2, total), 9))]
    for i, target in enumerate(targets):
        mode = "pre" if i % 2 else "post"  # before a commit (work lost) or just after one
        before = committed(killed)
        assert before < target
        proc = subprocess.run([sys.executable, str(Path(__file__).with_name("kill_at.py")),
                               str(target), mode, "run", *args, "--run-dir", str(killed)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == -signal.SIGKILL, (target, mode, proc.stderr[-2000:])
        assert committed(killed) == (target if mode == "post" else target - 1)
    done = cli("run", *args, "--run-dir", str(killed))
    assert done.returncode == 0, done.stderr[-2000:]
    assert store_rows(killed) == store_rows(reference)
    with sqlite3.connect(killed / "run.sqlite") as db:
        (fingerprint,) = db.execute(
            "SELECT value_json FROM run_config WHERE key = 'fingerprint'").fetchone()
    label = f"rsi-bench.run=run-{json.loads(fingerprint)[:8]}-s5"  # this run's containers only
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"],
                               capture_output=True, text=True).stdout.split()
    assert leftovers == []


@pytest.mark.parametrize("args, says", [
    (["--suite", "no-such-suite"], "no-such-suite"),
    (["--model", "nosuch/model"], "nosuch"),
    (["--improver", "magic"], "magic"),
    (["--strategy", "magic"], "magic"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], says: str) -> None:
    done = cli("run", "--model", "simulated", *args, "--run-dir", str(tmp_path / "r"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert says in done.stderr


def test_agent_without_manifest_and_foreign_run_dir(tmp_path: Path) -> None:
    require_backend("docker")
    (tmp_path / "agent").mkdir()
    done = cli("run", *BASE, "--agent", str(tmp_path / "agent"), "--run-dir",
               str(tmp_path / "a"))
    assert done.returncode != 0 and "agent.toml" in done.stderr and "Traceback" not in done.stderr
    run_dir = tmp_path / "r"
    assert cli("run", *BASE, "--generations", "0", "--run-dir", str(run_dir)).returncode == 0
    other = cli("run", *BASE, "--generations", "0", "--seed", "9", "--run-dir", str(run_dir))
    assert other.returncode != 0 and "different config" in other.stderr
    assert "seed" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    summary = json.dumps(store_rows(run_dir)["generations"])
    assert "evaluated" in summary


def test_warm_agent_containers_change_no_outcome(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose solves share warm containers records exactly what it records when every
    solve gets a container of its own."""
    require_backend("docker")
    from rsi_bench.agents import pool
    from rsi_bench.loop.config import RunConfig
    from rsi_bench.loop.runner import Loop

    def run(run_dir: Path) -> None:
        loop = Loop(RunConfig(model="simulated", limit=8, generations=2, improver="self",
                              seed=2, concurrency=1, solve_timeout=15, improve_timeout=60),
                    run_dir)
        try:
            loop.run()
        finally:
            loop.close()

    run(tmp_path / "warm")
    monkeypatch.setattr(pool, "POOLED_BACKENDS", ())  # a fresh container per solve
    run(tmp_path / "fresh")
    warm, fresh = store_rows(tmp_path / "warm"), store_rows(tmp_path / "fresh")
    assert warm["results"] and warm == fresh
