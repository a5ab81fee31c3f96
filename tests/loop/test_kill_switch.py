"""The kill switch: `rsi-bench stop` or a SIGTERM ends a run after the job in flight, and the
resumed run's store equals an uninterrupted run's; a second signal stops at once.

The stops are requested from the loop's own progress callback, right after a given result is
committed, so how many jobs finish after the request does not depend on timing: with one job at
a time, none may start once the request is made.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandboxes import require_backend
from test_loop import cli, store_rows

from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.control import Stopped, request_stop
from rsi_bench.loop.runner import Loop
from rsi_bench.paths import harness_dir

pytestmark = pytest.mark.docker

CONFIG = RunConfig(model="simulated", suite="rsi-core", limit=6, generations=2, improver="self",
                   seed=5, concurrency=1, solve_timeout=15, improve_timeout=60)


def run(run_dir: Path, progress: Callable[[str, dict[str, Any]], None] | None = None) -> None:
    loop = Loop(CONFIG, run_dir, progress)
    try:
        loop.run()
    finally:
        loop.close()


def results(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def stop_after(n: int, stop: Callable[[], None]) -> Callable[[str, dict[str, Any]], None]:
    seen = [0]

    def progress(kind: str, info: dict[str, Any]) -> None:
        if kind == "result":
            seen[0] += 1
            if seen[0] == n:
                stop()
    return progress


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_backend("docker")
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run(run_dir)
    return run_dir


@pytest.mark.parametrize("how", ["stop-file", "sigterm"])
def test_stop_ends_after_the_job_in_flight_and_resume_equals_an_uninterrupted_run(
        tmp_path: Path, reference: Path, how: str) -> None:
    run_dir = tmp_path / "run"
    total = results(reference)
    for n in (1, 4, 9):  # stopped three times: in generation 0, 0 again, and 1
        before = results(run_dir) if (run_dir / "run.sqlite").exists() else 0
        loop = Loop(CONFIG, run_dir, None)

        def sigterm(loop: Loop = loop) -> None:
            # never signal this process unless the switch holds SIGTERM (else it would die)
            assert signal.getsignal(signal.SIGTERM) == loop.switch._handle
            os.kill(os.getpid(), signal.SIGTERM)
            # the loop runs in a worker thread; the handler, in the main thread, sets the
            # switch within a fraction of a second: the stop is asked when it is set
            deadline = time.monotonic() + 60
            while loop.switch.signalled is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert loop.switch.signalled == signal.SIGTERM

        loop.progress = stop_after(n - before, (lambda: request_stop(run_dir))
                                   if how == "stop-file" else sigterm)
        try:
            with pytest.raises(Stopped, match="re-run the same command to resume"):
                loop.run()
        finally:
            loop.close()
        assert results(run_dir) == n  # the job that asked, and not one more
        assert n < total
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back
    run(run_dir)  # resumes: a stop file left by the last stop is for that attempt only
    assert store_rows(run_dir) == store_rows(reference)


AGENT_SLEEPS = '''
import time


def solve(task_view, model):
    model.complete([{"role": "user", "content": task_view.prompt}])
    time.sleep(600)  # the job in flight that a graceful stop would wait for
    return task_view.prompt


def improve(workspace, feedback, model):
    pass
'''


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    require_backend("docker")
    agent = tmp_path / "agent"
    agent.mkdir()
    shutil.copy(harness_dir() / "seed_agent" / "agent.toml", agent / "agent.toml")
    (agent / "agent.py").write_text(AGENT_SLEEPS)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsi_bench.cli", "run", "--model", "simulated", "--suite",
         "rsi-core", "--limit", "4", "--generations", "0", "--concurrency", "1",
         "--solve-timeout", "900", "--agent", str(agent), "--run-dir", str(run_dir),
         "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not _solve_called(run_dir):  # a solve has begun: it will sleep for 600 s
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=240)  # far less than the job's 600 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # both signals may be pending at once, and the kernel hands them over in its own order
    assert proc.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM), err
    assert "stopping after the jobs in flight" in err
    assert "stopping now" in err
    with sqlite3.connect(run_dir / "run.sqlite") as db:  # what was committed is kept
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 1
        (fingerprint,) = db.execute(
            "SELECT value_json FROM run_config WHERE key = 'fingerprint'").fetchone()
    label = f"rsi-bench.run=run-{json.loads(fingerprint)[:8]}-s0"
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"],
                               capture_output=True, text=True).stdout.split()
    assert leftovers == []  # its containers went with it
    assert cli("stop", str(tmp_path / "nowhere")).returncode != 0


def _solve_called(run_dir: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True) as db:
            return bool(db.execute("SELECT COUNT(*) FROM model_calls WHERE role = 'solve'"
                                   ).fetchone()[0])
    except sqlite3.OperationalError:
        return False
