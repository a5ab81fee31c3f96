"""The rsi-io suite end to end through the CLI: a 3-generation loop on the simulated model, its
bundle verified in another directory, and its Inspect export, each sample saying its kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandboxes import require_backend

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUN = ["--model", "simulated", "--suite", "rsi-io", "--limit", "4", "--generations", "3",
       "--concurrency", "2", "--seed", "1"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY",
                                                            "OPENAI_API_KEY")}
    return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], capture_output=True,
                          text=True, timeout=900, env=env, cwd=cwd)


def test_an_io_loop_runs_bundles_verifies_and_exports(tmp_path: Path) -> None:
    require_backend("docker")
    run = tmp_path / "run"
    done = cli("run", *RUN, "--run-dir", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((run / "report" / "results.json").read_text())
    (one,) = results["runs"]
    assert len(one["generations"]) == 4  # generation 0 and three children
    assert results["suite"]["suite"] == "rsi-io"

    bundle = tmp_path / "io.tar.gz"
    done = cli("bundle", str(run), "--out", str(bundle))
    assert done.returncode == 0, done.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli("verify", str(bundle), cwd=elsewhere)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]

    done = cli("export", "inspect", str(run), "--format", "json", "--out", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr[-2000:]
    logs = sorted((tmp_path / "logs").glob("*.json"))
    assert logs
    samples = [s for log in logs for s in json.loads(log.read_text()).get("samples") or []]
    assert samples and {s["metadata"]["kind"] for s in samples} == {"io"}
    assert all(s["id"].startswith("rsi-io/") for s in samples)
