"""The rendered report: every file, several runs side by side, and `rsi-bench report`."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rsi_bench.cli import cli
from rsi_bench.report import default_name, render

FILES = ["index.html", "report.md", "results.json", "generations.csv", "tasks.csv",
         "plots/score_per_generation.png", "plots/dev_vs_heldout.png", "plots/lineage.png",
         "plots/cost_vs_score.png", "plots/heatmap.png"]
PNG = b"\x89PNG\r\n\x1a\n"


def rsi_bench_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=os.environ.copy(), timeout=300)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_every_file_is_written(multi_report: Path) -> None:
    for name in FILES:
        assert (multi_report / name).is_file(), name
    for png in (multi_report / "plots").glob("*.png"):
        assert png.read_bytes().startswith(PNG)


def test_runs_side_by_side(multi_report: Path) -> None:
    data = json.loads((multi_report / "results.json").read_text())
    assert [c["condition"] for c in data["conditions"]] == ["self", "noop"]
    assert [r["id"] for r in data["runs"]] == ["self-s0", "self-s1", "noop-s0", "noop-s1"]
    assert data["noise_floor"]["value"] is not None
    html = (multi_report / "index.html").read_text()
    md = (multi_report / "report.md").read_text()
    for run_id in ("self-s0", "self-s1", "noop-s0", "noop-s1"):
        assert run_id in html and run_id in md
    for condition in data["conditions"]:
        label = condition["verdict"]["label"]
        assert f"**{condition['condition']}: {label}**" in md
    assert html.count("class='verdict ") == 2


def test_html_is_self_contained(multi_report: Path) -> None:
    html = (multi_report / "index.html").read_text()
    assert "<script" not in html.lower() and "<link" not in html.lower()
    sources = re.findall(r"src='([^']*)'", html)
    assert len(sources) == 5 and all(s.startswith("data:image/png;base64,") for s in sources)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", html)
    assert not re.search(r"(?:https?:)?//[a-z0-9]", text, re.I), "external URL in index.html"
    assert "url(" not in text


def test_simulated_and_synthetic_data_are_labelled(multi_report: Path) -> None:
    html = (multi_report / "index.html").read_text()
    md = (multi_report / "report.md").read_text()
    assert "SYNTHETIC DATA" in html and "SYNTHETIC DATA" in md


def test_verdict_sentence_has_every_number(multi_report: Path) -> None:
    md = (multi_report / "report.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- ") and "**self:" in x)
    for part in ("points [", "(95% CI)", "sealed split", "p ", "2 seeds × 8 tasks", "MDE",
                 "noise floor"):
        assert part in line, (part, line)


def test_report_states_reduced_bootstrap(multi_report: Path) -> None:
    md = (multi_report / "report.md").read_text()
    assert "2,000 resamples" in md and "10,000 bootstrap resamples" in md


def test_default_name() -> None:
    assert default_name(Path("runs/exp1")) == "exp1"
    assert default_name(Path("runs/exp1/seed-3")) == "exp1"
    assert default_name(Path("runs/exp1/run.sqlite")) == "exp1"


def test_render_names_the_report_after_the_first_run(hand_run: Path, tmp_path: Path) -> None:
    paths = render([hand_run], tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == FILES
    assert "<h1>rsi-bench report: run</h1>" in (tmp_path / "out" / "index.html").read_text()


def test_cli_report_prints_the_paths(multi_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(cli, ["report", *map(str, multi_runs), "--out", str(out),
                                      "--name", "side by side"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [str(out / name) for name in FILES]
    assert "rsi-bench report: side by side" in (out / "index.html").read_text()


def test_cli_default_out_dir_expands_seed_dirs(multi_runs: list[Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    condition_dir = multi_runs[0].parent  # <root>/self holding seed-0 and seed-1
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(condition_dir)])
    assert result.exit_code == 0, result.output
    assert "reports/self/index.html" in result.output.splitlines()
    data = json.loads((tmp_path / "reports" / "self" / "results.json").read_text())
    assert [r["id"] for r in data["runs"]] == ["self-s0", "self-s1"]


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "is not a run directory"),
    ("empty_dir", "no run.sqlite"),
    ("foreign_sqlite", "not an rsi-bench store"),
    ("newer", "newer than this rsi-bench reads"),
])
def test_cli_bad_input_is_one_line_exit_2(setup: str, message: str, tmp_path: Path,
                                          hand_run: Path) -> None:
    target = tmp_path / "run"
    if setup != "missing":
        target.mkdir()
    if setup == "foreign_sqlite":
        with sqlite3.connect(target / "run.sqlite") as db:
            db.execute("CREATE TABLE t (x)")
    if setup == "newer":
        shutil.copy(hand_run / "run.sqlite", target / "run.sqlite")
        with sqlite3.connect(target / "run.sqlite") as db:
            db.execute("UPDATE schema_version SET version = 99")
    line = one_line_error(rsi_bench_cli("report", str(target), "--out", str(tmp_path / "o"),
                                        cwd=tmp_path))
    assert line.startswith("rsi-bench: error: ") and message in line
    assert not (tmp_path / "o").exists()


def test_cli_refuses_runs_that_cannot_be_pooled(tmp_path: Path) -> None:
    from rsi_bench.results.synthetic import write_run

    a = write_run(tmp_path / "a", generations=1, tasks=6, split_seed=0)
    b = write_run(tmp_path / "b", generations=1, tasks=6, split_seed=7, improver="noop")
    line = one_line_error(rsi_bench_cli("report", str(a), str(b), "--out", str(tmp_path / "o")))
    assert "differ in split_seed" in line
