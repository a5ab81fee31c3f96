"""`rsi-bench experiment` end to end, in Docker, with the simulated model: kill -9 and resume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sandboxes import require_backend

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SPEC = """
[experiment]
name = "tiny"
suite = "rsi-core"
limit = 6
model = "simulated"
generations = 1
conditions = ["self", "noop"]
seeds = [0, 1]
concurrency = 2
solve_timeout = 15
improve_timeout = 60
[plan]
parallel_runs = 2
"""


def experiment(spec: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rsi_bench.cli", "experiment", str(spec),
                             "--dir", str(out), "--replications", "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


def committed_results(out: Path) -> int:
    total = 0
    for db_path in out.glob("runs/*/run.sqlite"):
        with contextlib.suppress(sqlite3.OperationalError), \
                contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True,
                                                   timeout=5)) as db:
            total += db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    return total


def numbers(out: Path) -> dict[str, Any]:
    """The report's numbers without paths and times. A call answered before a kill and asked
    again on resume is a free cache hit: counted among the calls made (of its role), never paid
    twice. So calls are compared as paid calls (calls minus cache hits, which are not counted
    per role), the agents' own and model seconds (measured, so never the same twice) not at
    all, and every other number as it is."""
    data = json.loads((out / "report" / "results.json").read_text())
    for run in data["runs"]:
        run.pop("path", None)
        for generation in run["generations"]:
            generation.pop("time", None)
            cost = generation["cost"]
            hits = cost.pop("cache_hits")
            cost["paid_calls"] = cost.pop("calls") - hits
            del cost["solve_calls"], cost["improve_calls"]
    return {k: data[k] for k in ("conditions", "noise_floor", "runs")}


def test_kill_and_resume_gives_the_same_report_numbers(tmp_path: Path) -> None:
    require_backend("docker")
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    reference = experiment(spec, tmp_path / "reference")
    out, err = reference.communicate(timeout=1800)
    assert reference.returncode == 0, err[-2000:]
    assert "plan: " in out and "self: " in out and "Could this" not in out
    assert "## Could this experiment detect it?" in \
        (tmp_path / "reference" / "report" / "report.md").read_text()

    killed = tmp_path / "killed"
    kills = 0
    for step in (1, 3, 5):  # after this many more committed results: never a timing
        before = committed_results(killed)
        proc = experiment(spec, killed)
        deadline = time.monotonic() + 900
        while proc.poll() is None and committed_results(killed) < before + step:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
    assert kills == 3
    done = experiment(spec, killed)
    _, err = done.communicate(timeout=1800)
    assert done.returncode == 0, err[-2000:]
    assert numbers(killed) == numbers(tmp_path / "reference")


def test_a_different_file_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    from rsi_bench.errors import InputError
    from rsi_bench.experiment.runner import prepare
    from rsi_bench.experiment.spec import load_spec

    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    prepare(load_spec(spec), tmp_path / "exp")
    prepare(load_spec(spec), tmp_path / "exp")  # the same experiment resumes
    spec.write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0, 2]"))
    with pytest.raises(InputError, match="noop-s1, noop-s2, self-s1, self-s2"):
        prepare(load_spec(spec), tmp_path / "exp")
