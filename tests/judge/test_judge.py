"""Verdict semantics, known-wrong solutions and repeatability of the judge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandboxes import ALL_BACKENDS, require_backend

from rsi_bench.judge import Job, Judge
from rsi_bench.tasks.model import Task

DATA = Path(__file__).resolve().parent.parent / "data"

SORT = Task(
    id="unit/sort_pair", entry_point="sort_pair",
    prompt='def sort_pair(a: int, b: int) -> tuple:\n    """Return (min, max)."""\n',
    reference="def sort_pair(a, b):\n    return (min(a, b), max(a, b))\n",
    tests=("def check(candidate):\n    assert candidate(2, 1) == (1, 2)\n"
           "    assert sort_pair(5, 5) == (5, 5)\n"  # the entry point by name, as HumanEval does
           "    try:\n        candidate('a', 1)\n    except TypeError:\n        pass\n"
           "    else:\n        assert False, 'expected TypeError'\n"),
)

CASES = [
    ("reference", SORT.reference, "pass"),
    ("wrong value", "def sort_pair(a, b):\n    return (a, b)\n", "fail"),
    ("list instead of tuple", "def sort_pair(a, b):\n    return [min(a, b), max(a, b)]\n", "fail"),
    ("empty body", "def sort_pair(a, b):\n    pass\n", "fail"),
    ("raises", "def sort_pair(a, b):\n    raise ValueError('no')\n", "error"),
    ("raises at load", "import no_such_module\n", "error"),
    ("syntax error", "def sort_pair(a, b)\n    return a\n", "invalid"),
    ("no entry point", "def other(a, b):\n    return a\n", "invalid"),
    ("entry point not callable", "sort_pair = 3\n", "invalid"),
    ("expected exception propagates by name",
     "def sort_pair(a, b):\n    if not isinstance(a, int):\n        raise TypeError\n"
     "    return (min(a, b), max(a, b))\n", "pass"),
    # a generator crosses as a lazy iterator, which is not equal to a tuple: as in one interpreter
    ("returns a generator", "def sort_pair(a, b):\n    yield a\n", "fail"),
    ("returns an unsupported value", "def sort_pair(a, b):\n    return object()\n", "error"),
]


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def judge(request: pytest.FixtureRequest) -> Iterator[Judge]:
    require_backend(request.param)
    with Judge(request.param, workers=2, timeout=5.0) as j:
        yield j


def test_verdict_semantics(judge: Judge) -> None:
    verdicts = judge.judge_many(Job(SORT, source, i) for i, (_, source, _) in enumerate(CASES))
    got = {name: v.status for (name, _, _), v in zip(CASES, verdicts, strict=True)}
    assert got == {name: want for name, _, want in CASES}
    assert all(v.task_id == SORT.id for v in verdicts)
    assert [v.key for v in verdicts] == list(range(len(CASES)))


def test_failed_assertion_names_the_line_but_not_its_text(judge: Judge) -> None:
    verdict = judge.judge(SORT, "def sort_pair(a, b):\n    return (a, b)\n")
    assert "tests.py line 2" in verdict.detail
    assert "candidate(2, 1)" not in verdict.detail


def _wrong_solutions() -> list[dict[str, str]]:
    path = DATA / "wrong_solutions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.docker
def test_known_wrong_solutions_all_fail_with_the_expected_verdict() -> None:
    require_backend("docker")
    from rsi_bench.tasks import load_suite

    suites = {"humaneval": load_suite("humaneval"), "rsi-core": load_suite("rsi-core")}
    rows = _wrong_solutions()
    assert len(rows) >= 24
    jobs = []
    for i, row in enumerate(rows):
        suite = suites["humaneval" if row["task_id"].startswith("HumanEval/") else "rsi-core"]
        jobs.append(Job(suite.get(row["task_id"]), row["solution"], i))
    with Judge("docker", workers=2) as judge:
        verdicts = judge.judge_many(jobs)
    wrong = [(r["task_id"], r["kind"], r["expected"], v.status, v.detail)
             for r, v in zip(rows, verdicts, strict=True) if v.status != r["expected"]]
    assert wrong == []
    kinds = {r["kind"] for r in rows}
    assert {"off-by-one", "wrong-type", "empty-body", "exception"} <= kinds


@pytest.mark.docker
def test_three_runs_give_identical_verdicts() -> None:
    require_backend("docker")
    from rsi_bench.tasks import load_suite

    humaneval = load_suite("humaneval")
    rows = _wrong_solutions()
    jobs = [Job(t, t.reference) for t in humaneval]
    jobs += [Job(humaneval.get(r["task_id"]), r["solution"], 1) for r in rows
             if r["task_id"] in humaneval]
    runs = []
    for _ in range(3):
        with Judge("docker", workers=2) as judge:
            runs.append([(v.task_id, v.key, v.status, v.detail)
                         for v in judge.judge_many(jobs)])
    assert runs[0] == runs[1] == runs[2]
    assert sum(status == "pass" for _, _, status, _ in runs[0]) == 164
