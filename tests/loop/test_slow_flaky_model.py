"""Same config, same score, whatever the model's speed and health (through the real loop, in
Docker, with the simulated model behind ``FlakyTransport``).

- Slow (latency x20) and flaky (seeded 503s, one server kill the backend's retries cannot ride
  out): the run records exactly the generations, lineage and results of the undisturbed run,
  and ``infra`` events for the jobs the kill reached.
- A model server that stays down: infra events, then the run stops with ``RunStopped``
  (nothing scored for the job in flight); resumed with the server back, the final store is the
  undisturbed run's.

No verdict here depends on a timing: failures come from the transport's seeded counters, and
the injected latency is excluded from the agents' limits (the exclusion itself is tested, with
limits shorter than one model call, in tests/agents/test_agent_time.py).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flaky_model import FlakyTransport
from sandboxes import require_backend
from test_loop import store_rows

from rsi_bench.infra import RunStopped
from rsi_bench.loop import runner
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CONFIG = RunConfig(model="simulated", limit=6, generations=2, improver="self", seed=3,
                   concurrency=2, solve_timeout=30, improve_timeout=60)
ORIGINAL_MODEL = runner._model


def _run(run_dir: Path) -> None:
    loop = Loop(CONFIG, run_dir)
    try:
        loop.run()
    finally:
        loop.close()


def _behind(monkeypatch: pytest.MonkeyPatch, **flaky: Any) -> list[FlakyTransport]:
    made: list[FlakyTransport] = []

    def model(config: RunConfig, tasks: Any) -> FlakyTransport:
        made.append(FlakyTransport(ORIGINAL_MODEL(config, tasks), **flaky))
        return made[-1]

    monkeypatch.setattr(runner, "_model", model)
    return made


def _events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return [{"generation": g, "detail": json.loads(d)} for g, d in db.execute(
            "SELECT generation, detail_json FROM events WHERE kind = ? ORDER BY id", (kind,))]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_backend("docker")
    run_dir = tmp_path_factory.mktemp("undisturbed")
    _run(run_dir)
    rows = store_rows(run_dir)
    assert rows["results"] and any(r[3] == "heldout" for r in rows["results"])
    assert not _events(run_dir, "infra")
    return rows


def _same_run(rows: dict[str, Any], reference: dict[str, Any]) -> None:
    # generations carry the lineage (parent, commit of the tree); results every verdict
    assert rows["generations"] == reference["generations"]
    assert rows["results"] == reference["results"]


def test_slow_and_flaky_model_changes_nothing(tmp_path: Path, undisturbed: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSI_BENCH_INFRA_BACKOFF", "0")
    # x20 the simulated model's latency, at least 0.2 s of real waiting per attempt: the
    # agents' limits must not count it; down for 4 attempts from the 5th call: more than
    # one call's 3 attempts, so at least one job is an infra outcome and runs again
    made = _behind(monkeypatch, latency_factor=20.0, floor_s=0.2, error_rate=0.3,
                   kill_at_call=5, down_for=4, seed=7)
    _run(tmp_path)
    (flaky,) = made
    assert flaky.kills == 1 and flaky.refused == 4 and flaky.errors_503 > 0
    _same_run(store_rows(tmp_path), undisturbed)
    infra = _events(tmp_path, "infra")
    assert infra and all(e["detail"]["cause"].startswith("model: ") for e in infra)
    assert any("no answer" in e["detail"]["cause"] for e in infra)
    assert not _events(tmp_path, "infra_stop")
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        times = db.execute("SELECT agent_s, model_s FROM results WHERE solve_status = 'ok'"
                           ).fetchall()
        # solves whose every call reached the model (none answered from the cache, as a
        # retried job's earlier calls and a child's smoke solve are)
        uncached = db.execute("""
            SELECT r.model_s FROM results r WHERE r.solve_status = 'ok' AND NOT EXISTS (
                SELECT 1 FROM model_calls c WHERE c.role = 'solve' AND c.cache_hit = 1
                AND c.generation = r.generation AND c.task_id = r.task_id
                AND c.sample = r.sample)""").fetchall()
    # every solve's calls went through its broker socket: model time was measured for each,
    # and where the model was really asked it holds the injected latency, not agent time
    assert times and all(model > 0 and agent >= 0 for agent, model in times)
    assert uncached and all(model >= 0.2 for (model,) in uncached)


def test_a_dead_model_server_stops_the_run_and_resume_finishes_it(
        tmp_path: Path, undisturbed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSI_BENCH_INFRA_BACKOFF", "0")
    monkeypatch.setenv("RSI_BENCH_INFRA_ATTEMPTS", "2")
    made = _behind(monkeypatch, latency_factor=1.0, error_rate=0.0, kill_at_call=4,
                   down_for=10_000)
    with pytest.raises(RunStopped, match="outside the agent.*run the same command again"):
        _run(tmp_path)
    assert made[0].kills == 1
    stopped = store_rows(tmp_path)
    infra = _events(tmp_path, "infra")
    assert len(infra) >= 2 and _events(tmp_path, "infra_stop")
    # nothing was scored for the jobs the dead server reached, and what was scored is right
    assert len(stopped["results"]) < len(undisturbed["results"])
    assert set(stopped["results"]) <= set(undisturbed["results"])
    assert all(r[4] != "error" or r in undisturbed["results"] for r in stopped["results"])

    _behind(monkeypatch, latency_factor=1.0, error_rate=0.0)  # the server is back
    _run(tmp_path)
    _same_run(store_rows(tmp_path), undisturbed)


def test_sandboxes_that_fail_to_start_are_infra_and_change_nothing(
        tmp_path: Path, undisturbed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The first starts of a judge runner and of an agent container fail, as they do when
    docker is overloaded: infra events, then exactly the undisturbed run."""
    from rsi_bench.agents import pool
    from rsi_bench.judge import judge
    from rsi_bench.sandbox.channel import ChannelError

    monkeypatch.setenv("RSI_BENCH_INFRA_BACKOFF", "0")
    failures = {"judge": 2, "agent": 2}

    def failing(kind: str, start: Any, error: type[Exception]) -> Any:
        def wrapped(self: Any) -> None:
            if failures[kind] > 0:
                failures[kind] -= 1
                raise error(f"the {kind} runner did not start in the sandbox (injected)")
            start(self)
        return wrapped

    monkeypatch.setattr(judge._Worker, "start",
                        failing("judge", judge._Worker.start, judge.JudgeStartError))
    monkeypatch.setattr(pool._Worker, "start",
                        failing("agent", pool._Worker.start, ChannelError))
    _run(tmp_path)
    assert failures == {"judge": 0, "agent": 0}
    _same_run(store_rows(tmp_path), undisturbed)
    causes = [e["detail"]["cause"] for e in _events(tmp_path, "infra")]
    assert len(causes) == 4 and all(c.startswith("sandbox did not start") for c in causes)
    assert {e["detail"]["job"] for e in _events(tmp_path, "infra")} == {"solve", "judge"}
