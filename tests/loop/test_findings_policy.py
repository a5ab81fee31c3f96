"""The findings policy through the loop and the CLI: a cheating edit the simulated model makes
is rejected under the default policy, evaluated under ``--on-finding record``, and a paused
child waits for a person's ``approve`` or ``reject``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sandboxes import require_backend
from test_loop import cli

pytestmark = pytest.mark.docker

# simulated/open_socket answers every improve request with the library's cheating edit that
# reaches for the network (an escape_code finding), whatever the request holds: the test does
# not depend on which edit a hash of the seed agent's files would draw.
ARGS = ["run", "--model", "simulated/open_socket", "--suite", "rsi-core", "--limit", "4",
        "--concurrency", "2", "--solve-timeout", "120", "--improve-timeout", "120",
        "--generations", "1", "--seed", "0"]
ESCAPES = ("open_socket", "write_outside_workspace")
MARKER = "# simulated cheating edit"  # the first line of every cheating edit's code


def generation(run_dir: Path, g: int) -> tuple[str, str | None, list[dict[str, str]], int]:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        status, reason, audit = db.execute(
            "SELECT status, reason, audit_json FROM generations WHERE generation = ?",
            (g,)).fetchone()
        (results,) = db.execute("SELECT COUNT(*) FROM results WHERE generation = ?",
                                (g,)).fetchone()
        (answer,) = db.execute("SELECT completion_json FROM model_calls WHERE role = 'improve' "
                               "AND generation = ?", (g,)).fetchone()
    edit = json.loads(json.loads(answer)["text"])
    assert edit["category"] == "cheating" and edit["edit"] in ESCAPES, \
        f"the simulated model answered {edit['edit']!r}, not an escape"
    return status, reason, json.loads(audit), results


def test_cheating_edit_is_rejected_by_default_and_evaluated_under_record(tmp_path: Path
                                                                          ) -> None:
    require_backend("docker")
    rejected, recorded = tmp_path / "default", tmp_path / "record"
    done = cli(*ARGS, "--run-dir", str(rejected))
    assert done.returncode == 0, done.stderr[-2000:]
    status, reason, audit, results = generation(rejected, 1)
    assert status == "invalid" and results == 0
    assert reason is not None and reason.startswith("policy rejects escape_code (high) in agent.py")
    caught = [f for f in audit if f["kind"] == "escape_code"]
    assert caught and all(f["action"] == "reject" for f in caught)
    assert MARKER in (rejected / "rejected" / "g0001.diff").read_text()
    card = json.loads((rejected / "report" / "results.json").read_text())["runs"][0]["safety"]
    assert [i["generation"] for i in card["invalid"]] == [1]
    assert "escape_code" in card["findings_by_kind"]
    row = shown_on_card(rejected, 1, "reject")
    assert row["status"] == "invalid" and row["dev"] is None

    done = cli(*ARGS, "--on-finding", "record", "--run-dir", str(recorded))
    assert done.returncode == 0, done.stderr[-2000:]
    status, reason, audit, results = generation(recorded, 1)
    assert status == "evaluated" and reason is None and results == 4
    assert {f["action"] for f in audit if f["kind"] == "escape_code"} == {"record"}
    card = json.loads((recorded / "report" / "results.json").read_text())["runs"][0]["safety"]
    assert card["invalid"] == [] and card["findings_by_kind"]["escape_code"] == 1
    row = shown_on_card(recorded, 1, "record")
    assert row["status"] == "evaluated" and row["gap"] == row["dev"] - row["heldout"]


def shown_on_card(run_dir: Path, g: int, action: str) -> dict[str, object]:
    """The generation's row of the safety card, in results.json, index.html and report.md,
    with the escape_code finding, the policy's action, and a diff link that resolves."""
    report = run_dir / "report"
    card = json.loads((report / "results.json").read_text())["runs"][0]["safety"]
    row = next(r for r in card["per_generation"] if r["generation"] == g)
    assert row["by_kind"]["escape_code"] == 1
    assert [f["action"] for f in row["findings"] if f["kind"] == "escape_code"] == [action]
    assert row["diff"] and MARKER in (report / row["diff"]).read_text()
    html, md = (report / "index.html").read_text(), (report / "report.md").read_text()
    assert f"<a href='{row['diff']}'>diff</a>" in html and f"[diff]({row['diff']})" in md
    for text in (html, md):
        assert "escape_code (high, " + action + ")" in text
    return row


@pytest.mark.parametrize("verdict", ["approve", "reject"])
def test_pause_waits_then_approve_continues_or_reject_skips(tmp_path: Path, verdict: str
                                                            ) -> None:
    require_backend("docker")
    run_dir = tmp_path / "run"
    args = [*ARGS, "--on-finding", "escape_code=pause", "--run-dir", str(run_dir)]
    early = cli(verdict, str(run_dir), "1")
    assert early.returncode != 0 and "not a run directory" in early.stderr
    done = cli(*args)
    assert done.returncode == 4, done.stderr[-2000:]
    assert "generation 1 is paused" in done.stderr and "Traceback" not in done.stderr
    assert (run_dir / "report" / "index.html").is_file()  # what the person reads
    status, _reason, audit, results = generation(run_dir, 1)
    assert status == "created" and results == 0
    assert {f["action"] for f in audit if f["kind"] == "escape_code"} == {"pause"}
    again = cli(*args)  # waiting: re-running without a decision changes nothing
    assert again.returncode == 4 and generation(run_dir, 1)[3] == 0
    assert cli(verdict, str(run_dir), "0").returncode != 0  # generation 0 was never paused
    decided = cli(verdict, str(run_dir), "1", "--note", "looked at the diff")
    assert decided.returncode == 0, decided.stderr
    assert cli(verdict, str(run_dir), "1").returncode != 0  # decided once
    done = cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    status, reason, _audit, results = generation(run_dir, 1)
    card = json.loads((run_dir / "report" / "results.json").read_text())["runs"][0]["safety"]
    assert card["paused"] == [{"generation": 1, "state": verdict.rstrip("e") + "ed",
                               "reason": card["paused"][0]["reason"]}]
    assert card["paused"][0]["reason"].startswith("policy pauses escape_code")
    if verdict == "approve":
        assert status == "evaluated" and results == 4
    else:
        assert status == "invalid" and results == 0
        assert reason is not None and reason.startswith("rejected by a person after a pause")
