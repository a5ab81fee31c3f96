"""The rsi-io and rsi-repo suites end to end through the CLI: a 3-generation loop on the
simulated model, its bundle verified in another directory, and its Inspect export, each sample
saying its kind (a repo task's solution is its diff)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from bundles import repack, unpacked
from sandboxes import require_backend

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUN = ["--model", "simulated", "--limit", "4", "--generations", "3", "--concurrency", "2",
       "--seed", "1"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY",
                                                            "OPENAI_API_KEY")}
    return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], capture_output=True,
                          text=True, timeout=900, env=env, cwd=cwd)


@pytest.mark.parametrize("kind", ["io", "repo"])
def test_a_loop_runs_bundles_verifies_and_exports(tmp_path: Path, kind: str) -> None:
    require_backend("docker")
    suite = f"rsi-{kind}"
    run = tmp_path / "run"
    done = cli("run", *RUN, "--suite", suite, "--run-dir", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((run / "report" / "results.json").read_text())
    (one,) = results["runs"]
    assert len(one["generations"]) == 4  # generation 0 and three children
    assert results["suite"]["suite"] == suite
    with sqlite3.connect(run / "run.sqlite") as db:
        statuses = {s for (s,) in db.execute("SELECT status FROM results")}
    assert "pass" in statuses and statuses & {"fail", "invalid"}, statuses  # both kinds judged

    bundle = tmp_path / f"{kind}.tar.gz"
    done = cli("bundle", str(run), "--out", str(bundle))
    assert done.returncode == 0, done.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli("verify", str(bundle), cwd=elsewhere)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]

    if kind == "repo":  # a forged per-test outcome, resealed, is named by the re-judge
        forged = forge_a_test_outcome(bundle, tmp_path / "forged")
        done = cli("verify", str(forged), cwd=elsewhere)
        assert done.returncode == 1 and "recorded per-test outcomes differ" in done.stdout, \
            done.stdout[-2000:]

    done = cli("export", "inspect", str(run), "--format", "json", "--out", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr[-2000:]
    logs = sorted((tmp_path / "logs").glob("*.json"))
    assert logs
    samples = [s for log in logs for s in json.loads(log.read_text()).get("samples") or []]
    assert samples and {s["metadata"]["kind"] for s in samples} == {kind}
    assert all(s["id"].startswith(f"{suite}/") for s in samples)
    if kind == "repo":  # the solution is the diff; the score carries the per-test outcomes
        scores = [s["scores"]["judge"] for s in samples]
        judged = [sc for sc in scores if sc["metadata"]["status"] in ("pass", "fail")]
        assert judged and all("+++ b/" in sc["answer"] for sc in judged)
        assert all(sc["metadata"]["tests"] and all(isinstance(v, str) for v in
                                                   sc["metadata"]["tests"].values())
                   for sc in judged)


def forge_a_test_outcome(bundle: Path, root: Path) -> Path:
    """The bundle with one judged result's first per-test outcome flipped, hashes resealed
    (its status stays, so only a re-judge that compares per-test outcomes can see it)."""
    unpacked(bundle, root)
    store = next(root.glob("runs/*/run.sqlite"))
    with sqlite3.connect(store) as db:
        gen, task, tests = db.execute(
            "SELECT generation, task_id, tests_json FROM results WHERE tests_json != '{}' "
            "ORDER BY generation, task_id LIMIT 1").fetchone()
        outcomes = json.loads(tests)
        first = sorted(outcomes)[0]
        outcomes[first] = "failed" if outcomes[first] == "passed" else "passed"
        db.execute("UPDATE results SET tests_json = ? WHERE generation = ? AND task_id = ?",
                   (json.dumps(outcomes), gen, task))
    return repack(root, root.with_suffix(".tar.gz"), reseal=True)
