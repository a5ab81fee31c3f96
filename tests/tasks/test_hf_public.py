"""Public suites through the hf: loader, offline: fixture rows in each dataset's published schema
(LiveCodeBench's code_generation_lite, CodeContests, HumanEval+), written to disk here, loaded
through `datasets`, and judged in the sandbox as the dataset's own evaluation judges them."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsi_bench.agents.container import _task_json
from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.judge import Judge
from rsi_bench.judge.io_job import check
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.hf_io import LCB_CHECKER
from rsi_bench.tasks.io_tasks import spec

datasets = pytest.importorskip("datasets")


def lcb_pack(cases: list[dict[str, str]]) -> str:
    """How code_generation_lite stores private tests: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


def lcb_row(qid: str, public: list, private: list, *, difficulty: str = "easy",
            packed: bool = True) -> dict[str, Any]:
    return {
        "question_title": f"Problem {qid}", "question_content": "Print the sum of A and B.",
        "platform": "atcoder", "question_id": qid, "contest_id": "abc000",
        "contest_date": "2024-01-01T00:00:00", "starter_code": "", "difficulty": difficulty,
        "public_test_cases": json.dumps(public),
        "private_test_cases": lcb_pack(private) if packed else json.dumps(private),
        "metadata": "{}",
    }


def stdin(i: str, o: str) -> dict[str, str]:
    return {"input": i, "output": o, "testtype": "stdin"}


LCB_ROWS = [
    lcb_row("abc000_a", [stdin("1 2\n", "3\n")], [stdin("10 20\n", "30\n"),
                                                  stdin("-5 5\n", "0\n")]),
    lcb_row("abc000_b", [stdin("1 2\n", "0.5\n")], [stdin("3 4\n", "0.75\n")],
            difficulty="medium", packed=False),
    {**lcb_row("leetcode_1", [], []), "platform": "leetcode", "starter_code": "class Solution:",
     "public_test_cases": json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}]),
     "metadata": json.dumps({"func_name": "f"})},
]

SUM_PY3 = "a, b = map(int, input().split())\nprint(a + b)\n"
CC_ROWS = [
    {"name": "1000_A. Sum Of Two", "description": "Given a and b, print a + b.",
     "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
     "private_tests": {"input": ["7 8\n"], "output": ["15\n"]},
     "generated_tests": {"input": ["0 0\n", "100 -1\n"], "output": ["0\n", "99\n"]},
     "source": 2, "difficulty": 7,
     "solutions": {"language": [2, 1, 3], "solution": ["int main(){}", "print 3",
                                                       SUM_PY3]},
     "incorrect_solutions": {"language": [3], "solution": ["print(0)\n"]},
     "cf_contest_id": 1000, "cf_index": "A", "cf_points": 500.0, "cf_rating": 800,
     "cf_tags": ["math"], "is_description_translated": False,
     "untranslated_description": "", "time_limit": {"seconds": 1, "nanos": 500000000},
     "memory_limit_bytes": 268435456, "input_file": "", "output_file": ""},
    {"name": "1000_B. From A File", "description": "Read input.txt.",
     "public_tests": {"input": ["1\n"], "output": ["1\n"]},
     "private_tests": {"input": [], "output": []},
     "generated_tests": {"input": [], "output": []},
     "source": 2, "difficulty": 8,
     "solutions": {"language": [3], "solution": ["print(open('input.txt').read())"]},
     "incorrect_solutions": {"language": [], "solution": []},
     "cf_contest_id": 1000, "cf_index": "B", "cf_points": 1000.0, "cf_rating": 1200,
     "cf_tags": [], "is_description_translated": False, "untranslated_description": "",
     "time_limit": {"seconds": 2, "nanos": 0}, "memory_limit_bytes": 268435456,
     "input_file": "input.txt", "output_file": "output.txt"},
]

# HumanEval+ (evalplus/humanevalplus): HumanEval's columns, tests as input/result tables checked
# by an assertion helper that uses numpy for floats.
HEPLUS_ROW = {
    "task_id": "HumanEval/2",
    "prompt": 'def truncate_number(number: float) -> float:\n    """Return the decimal part."""\n',
    "canonical_solution": "    return number % 1.0\n",
    "entry_point": "truncate_number",
    "test": (
        "import numpy as np\n\n"
        "def is_floats(x) -> bool:\n"
        "    if isinstance(x, float):\n        return True\n"
        "    if isinstance(x, (list, tuple)):\n"
        "        return all(isinstance(i, float) for i in x)\n"
        "    if isinstance(x, np.ndarray):\n"
        "        return x.dtype == np.float64 or x.dtype == np.float32\n"
        "    return False\n\n"
        "def assertion(out, exp, atol):\n"
        "    exact_match = out == exp\n"
        "    if atol == 0 and is_floats(exp):\n        atol = 1e-6\n"
        "    if not exact_match and atol != 0:\n"
        "        assert np.allclose(out, exp, rtol=1e-07, atol=atol)\n"
        "    else:\n        assert exact_match\n\n"
        "def check(candidate):\n"
        "    inputs = [[3.5], [1.25], [123.456], [999.99999]]\n"
        "    results = [0.5, 0.25, 0.45600000000000307, 0.9999900000000252]\n"
        "    for inp, exp in zip(inputs, results):\n"
        "        assertion(candidate(*inp), exp, 0)\n"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("public")
    with open(root / "lcb.jsonl", "w", encoding="utf-8") as out:
        for row in LCB_ROWS:
            out.write(json.dumps(row) + "\n")
    datasets.DatasetDict({"test": datasets.Dataset.from_list(CC_ROWS),
                          "train": datasets.Dataset.from_list(CC_ROWS[:1])}
                         ).save_to_disk(str(root / "cc"))
    datasets.Dataset.from_list([HEPLUS_ROW]).save_to_disk(str(root / "heplus"))
    return root


def test_livecodebench_rows_become_io_tasks(saved: Path) -> None:
    suite = load_suite(f"hf:{saved / 'lcb.jsonl'}?layout=livecodebench")
    assert [t.id for t in suite] == ["LiveCodeBench/abc000_a", "LiveCodeBench/abc000_b"]
    assert "1 of 3 rows left out" in suite.description  # the LeetCode (functional) row
    first, second = suite
    assert first.kind == "io" and first.difficulty == 1 and second.difficulty == 2
    doc = spec(first)
    # every test LiveCodeBench runs: public then private (the packed ones decoded)
    assert [c["input"] for c in doc["cases"]] == ["1 2\n", "10 20\n", "-5 5\n"]
    assert [e.input for e in first.examples] == ["1 2\n"]
    assert doc["checker"] == "program" and doc["checker_program"] == LCB_CHECKER
    assert doc["time_limit_s"] == 6.0
    sent = json.dumps(_task_json(first.view()))  # what the agent's container receives
    assert "1 2" in sent and "10 20" not in sent and "-5 5" not in sent
    assert first.reference == ""  # the lite dataset publishes no solutions


def test_livecodebench_comparison_is_its_own() -> None:
    doc = {"checker": "program", "checker_program": LCB_CHECKER}
    assert check(doc, "", "3\n", "3")
    assert check(doc, "", "  1 2 \n3\n\n", "1 2\n3")
    assert check(doc, "", "1.0 2\n", "1 2.00")  # numbers equal as decimals
    assert check(doc, "", "1  2\n", "1 2")  # tokens of a line, not its spacing
    assert not check(doc, "", "1 2 3\n", "1 2\n3")  # the line structure counts
    assert not check(doc, "", "1.0000001\n", "1")  # decimals are exact, no tolerance
    assert not check(doc, "", "Yes\n", "yes")
    assert not check(doc, "", "", "0")


def test_a_pickle_naming_a_global_is_refused_and_never_runs(saved: Path,
                                                            tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Boom:
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))

    hostile = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    path = tmp_path / "hostile.jsonl"
    path.write_text(json.dumps({**LCB_ROWS[0], "private_test_cases": hostile}) + "\n")
    with pytest.raises(TaskFormatError, match="private_test_cases.*refused global"):
        load_suite(f"hf:{path}?layout=livecodebench")
    assert not marker.exists()
    # control: the same pickle through the standard unpickler does run its global
    pickle.loads(zlib.decompress(base64.b64decode(hostile)))
    assert marker.exists()


def test_codecontests_rows_become_io_tasks(saved: Path) -> None:
    suite = load_suite(f"hf:{saved / 'cc'}?layout=codecontests")
    assert [t.id for t in suite] == ["CodeContests/1000_A._Sum_Of_Two"]
    assert "1 of 2 rows left out" in suite.description  # the one reading input.txt
    task = suite.tasks[0]
    doc = spec(task)
    assert [c["input"] for c in doc["cases"]] == ["1 2\n", "7 8\n", "0 0\n", "100 -1\n"]
    assert [e.input for e in task.examples] == ["1 2\n"]
    assert (doc["time_limit_s"], doc["memory_mb"], doc["checker"]) == (1.5, 256, "tokens")
    assert task.reference == SUM_PY3  # the first Python 3 solution, not the Python 2 one
    assert task.difficulty is None  # a Codeforces letter grade, not 1-3
    other = load_suite(f"hf:{saved / 'cc'}?layout=codecontests&checker=exact&split=train")
    assert spec(other.tasks[0])["checker"] == "exact"


def test_io_layout_options_are_checked(saved: Path) -> None:
    with pytest.raises(SuiteError, match="column options"):
        load_suite(f"hf:{saved / 'cc'}?layout=codecontests&prompt=description")
    with pytest.raises(SuiteError, match="checker= applies to the io layouts"):
        load_suite(f"hf:{saved / 'heplus'}?checker=tokens")
    with pytest.raises(TaskFormatError, match="checker 'program'"):
        load_suite(f"hf:{saved / 'cc'}?layout=codecontests&checker=program")
    with pytest.raises(TaskFormatError, match="column 'public_tests': missing"):
        broken = saved / "broken.jsonl"
        broken.write_text(json.dumps({"name": "x", "description": "d"}) + "\n")
        load_suite(f"hf:{broken}?layout=codecontests")


def test_humaneval_plus_rows_load_with_the_humaneval_layout(saved: Path) -> None:
    (task,) = load_suite(f"hf:{saved / 'heplus'}")
    assert (task.id, task.entry_point) == ("HumanEval/2", "truncate_number")
    assert task.reference == HEPLUS_ROW["prompt"] + HEPLUS_ROW["canonical_solution"]


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    from sandboxes import require_backend

    require_backend("docker")
    with Judge("docker", workers=1, timeout=30, run_label="test-hf-public") as j:
        yield j


@pytest.mark.docker
def test_loaded_public_tasks_judge_as_their_datasets_do(saved: Path, judge: Judge) -> None:
    lcb = load_suite(f"hf:{saved / 'lcb.jsonl'}?layout=livecodebench")
    add = lcb.get("LiveCodeBench/abc000_a")
    assert judge.judge(add, SUM_PY3).status == "pass"
    assert judge.judge(add, "a, b = map(int, input().split())\nprint(float(a + b))\n"
                       ).status == "pass"  # 30.0 equals 30 as a decimal, as in LiveCodeBench
    wrong = judge.judge(add, "a, b = map(int, input().split())\nprint(a - b)\n")
    assert (wrong.status, wrong.detail) == ("fail", "test 1 of 3: wrong answer")
    ratio = lcb.get("LiveCodeBench/abc000_b")
    assert judge.judge(ratio, "a, b = map(int, input().split())\nprint(a / b)\n"
                       ).status == "pass"

    (cc,) = load_suite(f"hf:{saved / 'cc'}?layout=codecontests")
    assert judge.judge(cc, cc.reference).status == "pass"
    verdict = judge.judge(cc, "print(0)\n")  # the row's incorrect solution
    assert verdict.status == "fail"

    (heplus,) = load_suite(f"hf:{saved / 'heplus'}")  # numpy in the tests, as HumanEval+ has
    assert judge.judge(heplus, heplus.reference).status == "pass"
    assert judge.judge(heplus, heplus.prompt + "    return number - int(number) + 1e-3\n"
                       ).status == "fail"


@pytest.mark.docker
def test_validate_checks_what_a_public_suite_publishes(saved: Path, judge: Judge) -> None:
    from click.testing import CliRunner

    from rsi_bench.cli import cli

    run = CliRunner().invoke
    result = run(cli, ["tasks", "validate", "--suite", f"hf:{saved / 'cc'}?layout=codecontests"])
    assert result.exit_code == 0, result.output
    assert "reference checks pass (1 tasks" in result.output
    result = run(cli, ["tasks", "validate", "--suite",
                       f"hf:{saved / 'lcb.jsonl'}?layout=livecodebench"])
    assert result.exit_code == 0, result.output
    assert "2 tasks have no reference solution" in result.output
