"""The loop's progress reporting: live score, cost and time left, without a terminal too."""

from __future__ import annotations

import pytest

from rsi_bench.loop.cli import _duration, _Reporter


def feed(reporter: _Reporter) -> None:
    reporter("start", {"total": 8, "done": 0, "per_generation": 4, "cost_usd": 0.0})
    reporter("evaluate", {"generation": 0, "todo": 4, "total": 4})
    for i, (split, status) in enumerate([("dev", "pass"), ("dev", "fail"),
                                         ("heldout", "pass"), ("heldout", "timeout")]):
        reporter("result", {"generation": 0, "task_id": f"t{i}", "status": status,
                            "split": split, "cost_usd": 0.25 * (i + 1)})


def test_lines_carry_score_cost_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = _Reporter(3, live=False)
    feed(reporter)
    reporter("improve", {"generation": 1, "parent": 0})
    reporter("invalid", {"generation": 1, "reason": "manifest: no entry", "skipped": 4})
    reporter.close()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[seed 3] generation 0: solving 4 tasks"
    assert "generation 0: 4/4, dev 1/2 heldout 1/2, $1.00 spent" in err[4]
    assert "left" in err[1] and "left" in err[3]  # half the run remains: an ETA is shown
    assert err[-2] == "[seed 3] generation 1: improving generation 0"
    assert err[-1] == "[seed 3] generation 1: invalid: manifest: no entry"
    assert reporter.done == reporter.total == 8  # the invalid child's solves count as skipped
    assert reporter._eta() is None


def test_resumed_run_estimates_from_new_work_only() -> None:
    reporter = _Reporter(0, live=False)
    reporter("start", {"total": 100, "done": 90, "per_generation": 10, "cost_usd": 2.0})
    assert reporter._eta() is None  # nothing done in this process yet: no guess
    assert reporter.cost == 2.0


def test_live_bar_tracks_the_same_counts() -> None:
    reporter = _Reporter(1, live=True)
    feed(reporter)
    assert reporter.bar is not None and reporter.task_id is not None
    task = reporter.bar.tasks[0]
    assert (task.completed, task.total) == (4, 8)
    assert task.fields["scores"] == "dev 1/2 heldout 1/2"
    assert task.fields["cost"] == "$1.00 spent"
    reporter.close()
    assert reporter.bar is None


@pytest.mark.parametrize(("seconds", "text"), [(5, "5 s"), (65, "1 min 05 s"),
                                                (3725, "1 h 02 min")])
def test_duration(seconds: float, text: str) -> None:
    assert _duration(seconds) == text
